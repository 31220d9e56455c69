"""Routes of the correction screen (included from config.urls)."""

from django.urls import path

from . import views

app_name = "correct"

urlpatterns = [
    path("projects/<int:project_id>/correct/", views.correct_next, name="next"),
    path("projects/<int:project_id>/correct/<int:alt_id>/", views.correct_item, name="item"),
    path(
        "projects/<int:project_id>/correct/<int:alt_id>/check/",
        views.correct_check,
        name="check",
    ),
    path(
        "projects/<int:project_id>/correct/<int:alt_id>/submit/",
        views.correct_submit,
        name="submit",
    ),
]
