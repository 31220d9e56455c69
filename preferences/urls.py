from django.urls import path

from . import views
from .rating import views as rating

app_name = "rate"

urlpatterns = [
    path("projects/<int:project_id>/rate/", rating.rate_home, name="home"),
    path("projects/<int:project_id>/rate/next/", rating.rate_next, name="next"),
    path("projects/<int:project_id>/rate/status/", rating.rate_status, name="status"),
    path("projects/<int:project_id>/rate/history/", rating.rate_history, name="history"),
    path("rate/keys/", rating.rate_keys, name="keys"),
    path("rate/items/<int:assignment_id>/", rating.rate_item, name="item"),
    path("rate/items/<int:assignment_id>/submit/", rating.rate_submit, name="submit"),
    path("rate/items/<int:assignment_id>/edit/", rating.rate_edit, name="edit"),
    path("rate/items/<int:assignment_id>/prefetch/", rating.rate_prefetch, name="prefetch"),
    path("rate/items/<int:assignment_id>/skip/", rating.rate_skip, name="skip"),
    path("rate/items/<int:assignment_id>/undo/", rating.rate_undo, name="undo"),
    path("projects/<int:project_id>/review/", views.review_list, name="review"),
    path("projects/<int:project_id>/review/<int:pair_id>/", views.review_pair, name="review_pair"),
    path("projects/<int:project_id>/dashboard/", views.dashboard, name="dashboard"),
]
