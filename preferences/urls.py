from django.urls import path

from . import views

app_name = "rate"

urlpatterns = [
    path("projects/<int:project_id>/rate/", views.rate_home, name="home"),
    path("projects/<int:project_id>/rate/next/", views.rate_next, name="next"),
    path("projects/<int:project_id>/rate/status/", views.rate_status, name="status"),
    path("projects/<int:project_id>/rate/history/", views.rate_history, name="history"),
    path("rate/keys/", views.rate_keys, name="keys"),
    path("rate/items/<int:assignment_id>/", views.rate_item, name="item"),
    path("rate/items/<int:assignment_id>/submit/", views.rate_submit, name="submit"),
    path("rate/items/<int:assignment_id>/edit/", views.rate_edit, name="edit"),
    path("rate/items/<int:assignment_id>/prefetch/", views.rate_prefetch, name="prefetch"),
    path("rate/items/<int:assignment_id>/skip/", views.rate_skip, name="skip"),
    path("rate/items/<int:assignment_id>/undo/", views.rate_undo, name="undo"),
    path("projects/<int:project_id>/review/", views.review_list, name="review"),
    path("projects/<int:project_id>/review/<int:pair_id>/", views.review_pair, name="review_pair"),
    path("projects/<int:project_id>/dashboard/", views.dashboard, name="dashboard"),
]
