"""REST API routes under /api/, the OpenAPI schema and its docs pages (assets served locally)."""

from django.urls import path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from core.security import DOCS_POLICY, csp_override
from core.throttle import obtain_auth_token

from . import views

app_name = "api"

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="token"),
    path("projects/", views.ProjectListApi.as_view(), name="projects"),
    path("projects/<int:project_id>/", views.ProjectDetailApi.as_view(), name="project"),
    path("projects/<int:project_id>/posts/", views.PostListApi.as_view(), name="posts"),
    path("projects/<int:project_id>/alt-texts/", views.AltTextListApi.as_view(), name="alt-texts"),
    path("projects/<int:project_id>/pairs/", views.PairListApi.as_view(), name="pairs"),
    path(
        "projects/<int:project_id>/pairs/<int:pair_id>/consensus/",
        views.PairConsensusApi.as_view(),
        name="consensus",
    ),
    path(
        "projects/<int:project_id>/judgements/",
        views.JudgementListCreateApi.as_view(),
        name="judgements",
    ),
    path(
        "projects/<int:project_id>/snapshots/",
        views.SnapshotListCreateApi.as_view(),
        name="snapshots",
    ),
    path("snapshots/<int:snapshot_id>/", views.SnapshotDetailApi.as_view(), name="snapshot"),
    path(
        "snapshots/<int:snapshot_id>/files/<path:name>",
        views.SnapshotDownloadApi.as_view(),
        name="snapshot-file",
    ),
    path(
        "projects/<int:project_id>/rounds/",
        views.RoundListCreateApi.as_view(),
        name="rounds",
    ),
    path(
        "projects/<int:project_id>/rounds/<int:round_id>/attach/",
        views.RoundAttachApi.as_view(),
        name="round-attach",
    ),
    path("rounds/<int:round_id>/", views.RoundDetailApi.as_view(), name="round"),
    path("rounds/<int:round_id>/cancel/", views.RoundCancelApi.as_view(), name="round-cancel"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's init script as a file: no inline script (CSP).
    path(
        "docs/",
        csp_override(DOCS_POLICY)(SpectacularSwaggerSplitView.as_view(url_name="api:schema")),
        name="docs",
    ),
    path(
        "redoc/",
        csp_override(DOCS_POLICY)(SpectacularRedocView.as_view(url_name="api:schema")),
        name="redoc",
    ),
]
