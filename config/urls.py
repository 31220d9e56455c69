"""URL configuration."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("", include("snapshots.urls")),
    path("", include("annotate.urls")),
    path("", include("annotate.urls_correct")),
    path("", include("preferences.urls")),
    path("", include("preferences.labelers.urls")),
    path("", include("preferences.consensus.urls")),
    path("rounds/", include("modeltrain.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

# A database or Redis outage raised outside a view (sessions, auth) is a 503 page, not a 500.
handler500 = "core.middleware.server_error"
