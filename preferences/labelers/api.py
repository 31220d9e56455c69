"""REST API for labelling runs: start one, read its progress."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.models import Role
from annotate.selectors import project_for_api
from core.api import MAX_ID
from core.errors import NotFound
from core.jobs import QUEUE_DOWN_MESSAGE

from .config import PROVIDERS
from .models import LabelRun, LabelTask
from .selectors import label_run_get, label_run_list
from .services import MAX_RUN_LIMIT, label_run_cancel, label_run_retry, label_run_start


class LabelRunOutput(serializers.ModelSerializer):
    labeler = serializers.CharField(source="labeler.__str__")
    provider = serializers.CharField(source="labeler.provider")
    percent = serializers.IntegerField()
    notice = serializers.SerializerMethodField()

    def get_notice(self, obj) -> str:
        """Set while the run waits for a job queue that could not be reached."""
        return QUEUE_DOWN_MESSAGE if obj.status == "queued" and obj.heartbeat_at is None else ""

    class Meta:
        model = LabelRun
        fields = [
            "id", "task", "status", "labeler", "provider", "limit", "total", "done", "failed", "cache_hits",
            "http_calls", "budget_usd", "spent_usd", "percent", "message", "created_at",
            "finished_at", "notice",
        ]  # fmt: skip


class LabelRunInput(serializers.Serializer):
    task = serializers.ChoiceField(choices=LabelTask.choices)
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_RUN_LIMIT, allow_null=True
    )
    budget_usd = serializers.DecimalField(
        required=False, max_digits=10, decimal_places=4, min_value=0, allow_null=True
    )
    # A registered provider key; empty: LLM_PROVIDER, else the first configured provider.
    provider = serializers.ChoiceField(
        choices=list(PROVIDERS), required=False, allow_null=True, allow_blank=True
    )


class LabelRunListCreateApi(APIView):
    @extend_schema(tags=["llm"], responses=LabelRunOutput(many=True), operation_id="llm_runs_list")
    def get(self, request, project_id: int):
        project = project_for_api(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        return Response(LabelRunOutput(label_run_list(project=project), many=True).data)

    @extend_schema(
        tags=["llm"],
        request=LabelRunInput,
        responses={201: LabelRunOutput},
        description="Start an LLM labelling run (409 when the LLM judge is not configured).",
    )
    def post(self, request, project_id: int):
        project = project_for_api(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        data = LabelRunInput(data=request.data)
        data.is_valid(raise_exception=True)
        run = label_run_start(project=project, user=request.user, **data.validated_data)
        return Response(LabelRunOutput(run).data, status=status.HTTP_201_CREATED)


class LabelRunDetailApi(APIView):
    @extend_schema(tags=["llm"], responses=LabelRunOutput, operation_id="llm_runs_retrieve")
    def get(self, request, project_id: int, run_id: int):
        project = project_for_api(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        run = label_run_get(project=project, run_id=run_id) if run_id <= MAX_ID else None
        if run is None:
            raise NotFound("No such run.")
        return Response(LabelRunOutput(run).data)


def _run(request, project_id: int, run_id: int) -> LabelRun:
    project = project_for_api(user=request.user, project_id=project_id, min_role=Role.ADMIN)
    run = label_run_get(project=project, run_id=run_id) if run_id <= MAX_ID else None
    if run is None:
        raise NotFound("No such run.")
    return run


class LabelRunCancelApi(APIView):
    @extend_schema(tags=["llm"], request=None, responses=LabelRunOutput)
    def post(self, request, project_id: int, run_id: int):
        """Cancel a queued or running labelling run (admins)."""
        return Response(
            LabelRunOutput(label_run_cancel(run=_run(request, project_id, run_id))).data
        )


class LabelRunRetryApi(APIView):
    @extend_schema(tags=["llm"], request=None, responses={202: LabelRunOutput})
    def post(self, request, project_id: int, run_id: int):
        """Run a failed, cancelled or budget-stopped run again over what it has not labelled."""
        run = label_run_retry(run=_run(request, project_id, run_id))
        return Response(LabelRunOutput(run).data, status=status.HTTP_202_ACCEPTED)
