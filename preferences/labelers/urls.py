from django.urls import path

from . import api, views

app_name = "labelers"

urlpatterns = [
    path("projects/<int:project_id>/llm/", views.llm_dashboard, name="dashboard"),
    path("projects/<int:project_id>/llm/runs/", views.llm_runs_fragment, name="runs"),
    path("projects/<int:project_id>/llm/start/", views.llm_run_start, name="start"),
    path(
        "projects/<int:project_id>/llm/runs/<int:run_id>/cancel/",
        views.llm_run_cancel,
        name="cancel",
    ),
    path(
        "api/projects/<int:project_id>/llm-runs/",
        api.LabelRunListCreateApi.as_view(),
        name="api-runs",
    ),
    path(
        "api/projects/<int:project_id>/llm-runs/<int:run_id>/",
        api.LabelRunDetailApi.as_view(),
        name="api-run",
    ),
]
