"""URL configuration."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static as static_url
from django.urls import include, path
from django.views.generic import RedirectView

# The app's own error pages (templates/403.html, 404.html, 500.html).
handler403 = "core.error_views.permission_denied"
handler404 = "core.error_views.page_not_found"

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico on pages without an icon link (a PDF, a raw file view).
    path("favicon.ico", RedirectView.as_view(url=static_url("favicon.svg"), permanent=True)),
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
