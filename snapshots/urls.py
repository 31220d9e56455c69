from django.urls import path

from . import views

app_name = "snapshots"

urlpatterns = [
    path("projects/<int:project_id>/snapshots/", views.snapshot_list, name="list"),
    path("projects/<int:project_id>/snapshots/new", views.snapshot_new, name="create"),
    path("snapshots/<int:snapshot_id>/", views.snapshot_detail, name="detail"),
    path("snapshots/<int:snapshot_id>/cancel", views.snapshot_cancel_view, name="cancel"),
    path("snapshots/<int:snapshot_id>/retry", views.snapshot_retry_view, name="retry"),
    path("snapshots/<int:snapshot_id>/files/<path:name>", views.snapshot_download, name="download"),
]
