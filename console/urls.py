from django.urls import path

from . import views

app_name = "console"

urlpatterns = [
    path("projects/new/", views.project_new, name="project_new"),
    path("projects/<int:project_id>/settings/", views.project_settings, name="settings"),
    path("projects/<int:project_id>/members/", views.members, name="members"),
    path("projects/<int:project_id>/members/add/", views.member_add, name="member_add"),
    path(
        "projects/<int:project_id>/members/<int:membership_id>/remove/",
        views.member_remove,
        name="member_remove",
    ),
    path("projects/<int:project_id>/imports/", views.imports, name="imports"),
    path("projects/<int:project_id>/imports/<int:job_id>/", views.import_detail, name="import"),
]
