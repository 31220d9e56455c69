from django.urls import path

from . import api, views

app_name = "consensus"

urlpatterns = [
    path("projects/<int:project_id>/consensus/", views.consensus_dashboard, name="dashboard"),
    path(
        "projects/<int:project_id>/consensus/settings/",
        views.consensus_policy_save,
        name="policy",
    ),
    path("projects/<int:project_id>/consensus/refit/", views.consensus_refit, name="refit"),
    path("projects/<int:project_id>/consensus/gold/", views.gold_create, name="gold"),
    path(
        "api/projects/<int:project_id>/agreement/", api.AgreementApi.as_view(), name="api-agreement"
    ),
    path(
        "api/projects/<int:project_id>/consensus/",
        api.ConsensusListApi.as_view(),
        name="api-consensus",
    ),
]
