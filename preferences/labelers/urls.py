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
        "projects/<int:project_id>/llm/runs/<int:run_id>/retry/",
        views.llm_run_retry,
        name="retry",
    ),
    path(
        "api/projects/<int:project_id>/llm-runs/<int:run_id>/cancel/",
        api.LabelRunCancelApi.as_view(),
        name="api-run-cancel",
    ),
    path(
        "api/projects/<int:project_id>/llm-runs/<int:run_id>/retry/",
        api.LabelRunRetryApi.as_view(),
        name="api-run-retry",
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
