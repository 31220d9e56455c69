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
    path(
        "password/change/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path(
        "password/reset/",
        auth_views.PasswordResetView.as_view(
            email_template_name="registration/password_reset_email.txt",
            subject_template_name="registration/password_reset_subject.txt",
        ),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico on pages without an icon link (a PDF, a raw file view).
    path("favicon.ico", RedirectView.as_view(url=static_url("favicon.svg"), permanent=True)),
    path("api/", include("api.urls")),
    path("", include("snapshots.urls")),
    path("", include("annotate.urls")),
    path("", include("preferences.correction.urls")),
    path("", include("preferences.urls")),
    path("", include("preferences.labelers.urls")),
    path("", include("preferences.consensus.urls")),
    path("", include("console.urls")),
    path("rounds/", include("modeltrain.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

# A database or Redis outage raised outside a view (sessions, auth) is a 503 page, not a 500.
handler500 = "core.middleware.server_error"
