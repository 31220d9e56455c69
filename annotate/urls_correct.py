"""Routes of the correction screen (included from config.urls)."""

from django.urls import path

from . import views_correct

app_name = "correct"

urlpatterns = [
    path("projects/<int:project_id>/correct/", views_correct.correct_next, name="next"),
    path(
        "projects/<int:project_id>/correct/<int:alt_id>/", views_correct.correct_item, name="item"
    ),
    path(
        "projects/<int:project_id>/correct/<int:alt_id>/check/",
        views_correct.correct_check,
        name="check",
    ),
    path(
        "projects/<int:project_id>/correct/<int:alt_id>/submit/",
        views_correct.correct_submit,
        name="submit",
    ),
]
