"""Rounds pages, mounted at /rounds/."""

from django.urls import path

from . import views

app_name = "rounds"

urlpatterns = [
    path("projects/<int:project_id>/", views.round_list, name="list"),
    path("projects/<int:project_id>/start", views.round_new, name="start"),
    path("projects/<int:project_id>/compare", views.round_compare, name="compare"),
    path("<int:round_id>/", views.round_detail, name="detail"),
    path("<int:round_id>/cancel", views.round_cancel_view, name="cancel"),
]
