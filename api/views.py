"""REST API (DRF): what the browser can do, with per-project roles.

Annotators read a project's items and training rounds and write their own judgements; reviewers
also adjudicate and see everyone's judgements; admins export snapshots and start rounds. Non-members get 404 for everything inside a
project. Each view validates its input with a nested serializer and calls one selector/service;
failures are ApplicationErrors, which core.api turns into {"message", "extra"} with a 4xx.
"""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.models import AltText, AltTextOrigin, Platform, Post, Project, Role, Split
from annotate.selectors import project_for_api, project_list_for_user, project_role
from core.api import MAX_ID
from core.errors import ApplicationError, NotFound
from core.jobs import QUEUE_DOWN_MESSAGE
from modeltrain.models import Method as RoundMethod
from modeltrain.models import RoundStatus, TrainingRound
from modeltrain.models import Strategy as RoundStrategy
from modeltrain.selectors import round_get_for_user, round_list_for_project
from modeltrain.services import round_attach, round_cancel, round_start
from preferences.consensus.selectors import llm_verdicts_readable
from preferences.models import (
    CandidatePair,
    Choice,
    Judgement,
    JudgementKind,
    PairSource,
    ShownOrder,
)
from preferences.services import judgement_record
from snapshots.models import Snapshot, SnapshotKind
from snapshots.selectors import consensus_labels, snapshot_get_for_user, snapshot_list_for_project
from snapshots.services import (
    FORMATS,
    IMAGE_PATH_MODES,
    snapshot_cancel,
    snapshot_create,
    snapshot_file_path,
    snapshot_filters_build,
    snapshot_formats_parse,
    snapshot_retry,
)

ERROR = inline_serializer(
    "Error", {"message": serializers.CharField(), "extra": serializers.DictField()}
)
ERRORS = {
    400: OpenApiResponse(ERROR, description="Invalid input"),
    403: OpenApiResponse(ERROR, description="Your role does not allow this"),
    404: OpenApiResponse(ERROR, description="Not found, or not a member"),
}


def _query(serializer_class, request) -> dict:
    """Validate query-string filters; unknown values are a 400 with the field named."""
    s = serializer_class(data=request.query_params)
    s.is_valid(raise_exception=True)
    return s.validated_data


# --- projects --------------------------------------------------------------------------------


class ProjectOutput(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "guidelines", "platforms", "overlap", "created_at", "role"]

    def get_role(self, obj) -> str | None:
        return project_role(project=obj, user=self.context["request"].user)


@extend_schema(tags=["projects"], responses={200: ProjectOutput})
class ProjectListApi(generics.ListAPIView):
    serializer_class = ProjectOutput

    def get_queryset(self):
        return project_list_for_user(user=self.request.user)


class ProjectDetailApi(APIView):
    @extend_schema(tags=["projects"], responses={200: ProjectOutput, **ERRORS})
    def get(self, request, project_id: int):
        project = project_for_api(user=request.user, project_id=project_id, min_role=Role.ANNOTATOR)
        return Response(ProjectOutput(project, context={"request": request}).data)


# --- items -----------------------------------------------------------------------------------


class PostOutput(serializers.ModelSerializer):
    image_sha256 = serializers.CharField(source="image.sha256")

    class Meta:
        model = Post
        fields = ["id", "platform", "external_id", "context", "split", "image_sha256", "created_at"]


class PostFilter(serializers.Serializer):
    platform = serializers.ChoiceField(choices=Platform.choices, required=False)
    split = serializers.ChoiceField(choices=Split.choices, required=False)


class _ProjectListApi(generics.ListAPIView):
    """A list inside one project: membership checked first, filters validated."""

    filter_serializer: type[serializers.Serializer] | None = None
    min_role = Role.ANNOTATOR

    def get_queryset(self):
        self.project = project_for_api(
            user=self.request.user, project_id=self.kwargs["project_id"], min_role=self.min_role
        )
        filters = _query(self.filter_serializer, self.request) if self.filter_serializer else {}
        return self.filtered(self.project, filters)


@extend_schema(tags=["items"], parameters=[PostFilter], responses={200: PostOutput, **ERRORS})
class PostListApi(_ProjectListApi):
    serializer_class = PostOutput
    filter_serializer = PostFilter

    def filtered(self, project, f):
        qs = project.posts.select_related("image").order_by("id")
        if "platform" in f:
            qs = qs.filter(platform=f["platform"])
        if "split" in f:
            qs = qs.filter(split=f["split"])
        return qs


class AltTextOutput(serializers.ModelSerializer):
    class Meta:
        model = AltText
        fields = ["id", "post", "text", "origin", "parent", "source_round_id", "created_at"]


class AltTextFilter(serializers.Serializer):
    post = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    origin = serializers.ChoiceField(choices=AltTextOrigin.choices, required=False)


@extend_schema(tags=["items"], parameters=[AltTextFilter], responses={200: AltTextOutput, **ERRORS})
class AltTextListApi(_ProjectListApi):
    serializer_class = AltTextOutput
    filter_serializer = AltTextFilter

    def filtered(self, project, f):
        qs = AltText.objects.filter(post__project=project).order_by("id")
        if "post" in f:
            qs = qs.filter(post_id=f["post"])
        if "origin" in f:
            qs = qs.filter(origin=f["origin"])
        return qs


class PairOutput(serializers.ModelSerializer):
    class Meta:
        model = CandidatePair
        fields = ["id", "post", "alt_a", "alt_b", "source", "known_preference", "created_at"]


class PairFilter(serializers.Serializer):
    post = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    source = serializers.ChoiceField(choices=PairSource.choices, required=False)


@extend_schema(tags=["items"], parameters=[PairFilter], responses={200: PairOutput, **ERRORS})
class PairListApi(_ProjectListApi):
    serializer_class = PairOutput
    filter_serializer = PairFilter

    def filtered(self, project, f):
        qs = CandidatePair.objects.filter(post__project=project).order_by("id")
        if "post" in f:
            qs = qs.filter(post_id=f["post"])
        if "source" in f:
            qs = qs.filter(source=f["source"])
        return qs


def _pair(project: Project, pair_id: int) -> CandidatePair:
    pair = (
        CandidatePair.objects.filter(pk=pair_id, post__project=project)
        .select_related("post")
        .first()
        if pair_id <= MAX_ID
        else None
    )
    if pair is None:
        raise NotFound("No such pair in this project.")
    return pair


class ConsensusOutput(serializers.Serializer):
    facet = serializers.CharField()
    label = serializers.ChoiceField(choices=Choice.choices)
    confidence = serializers.FloatField()
    votes = serializers.IntegerField()
    method = serializers.CharField()


class PairConsensusApi(APIView):
    @extend_schema(
        tags=["judgements"],
        summary="Consensus per facet: the blended label exports use",
        description=(
            "Per facet, the blended consensus (the latest reviewer adjudication wins, else the "
            "project's weighted vote or Dawid-Skene), its confidence (posterior probability), "
            "number of votes and method."
        ),
        responses={200: ConsensusOutput(many=True), **ERRORS},
    )
    def get(self, request, project_id: int, pair_id: int):
        project = project_for_api(user=request.user, project_id=project_id, min_role=Role.ANNOTATOR)
        pair = _pair(project, pair_id)
        judgements = Judgement.objects.filter(pair=pair)
        labels = consensus_labels(judgements=judgements, include_llm_only=True).get(pair.pk, {})
        if not llm_verdicts_readable(project=project, user=request.user, pair=pair):
            # Blind-first: an annotator's open item shows no LLM vote, as on the judge screen.
            # A blended label carries the LLM's vote too, so a facet the LLM answered is left
            # out whole, not only its LLM-only labels.
            llm_facets = set(
                judgements.filter(kind=JudgementKind.LLM).values_list("facet__key", flat=True)
            )
            labels = {k: v for k, v in labels.items() if k not in llm_facets}
        data = [
            {
                "facet": k,
                "label": v.label,
                "confidence": v.confidence,
                "votes": v.votes,
                "method": v.method,
            }
            for k, v in sorted(labels.items())
        ]
        return Response(ConsensusOutput(data, many=True).data)


# --- judgements ------------------------------------------------------------------------------


class JudgementOutput(serializers.ModelSerializer):
    facet = serializers.CharField(source="facet.key")

    class Meta:
        model = Judgement
        fields = [
            "id",
            "pair",
            "facet",
            "kind",
            "rater_user",
            "choice",
            "shown_order",
            "seconds_spent",
            "rationale",
            "client_key",
            "created_at",
        ]


class JudgementFilter(serializers.Serializer):
    pair = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    kind = serializers.ChoiceField(choices=JudgementKind.choices, required=False)


class JudgementInput(serializers.Serializer):
    pair = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    facet = serializers.SlugField(max_length=32)
    choice = serializers.ChoiceField(choices=Choice.choices)
    kind = serializers.ChoiceField(
        choices=[JudgementKind.HUMAN, JudgementKind.ADJUDICATION], default=JudgementKind.HUMAN
    )
    shown_order = serializers.ChoiceField(choices=ShownOrder.choices, default=ShownOrder.AB)
    seconds_spent = serializers.FloatField(
        required=False, allow_null=True, min_value=0, max_value=86_399
    )
    rationale = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    client_key = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")


class JudgementListCreateApi(_ProjectListApi):
    serializer_class = JudgementOutput
    filter_serializer = JudgementFilter

    def filtered(self, project, f):
        qs = Judgement.objects.filter(pair__post__project=project).select_related("facet")
        role = project_role(project=project, user=self.request.user)
        if role == Role.ANNOTATOR:
            qs = qs.filter(rater_user=self.request.user)  # annotators see only their own answers
        if "pair" in f:
            qs = qs.filter(pair_id=f["pair"])
        if "kind" in f:
            qs = qs.filter(kind=f["kind"])
        return qs.order_by("id")

    @extend_schema(
        tags=["judgements"],
        parameters=[JudgementFilter],
        responses={200: JudgementOutput, **ERRORS},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=["judgements"],
        summary="Record a judgement (idempotent: resubmitting returns the stored one with 200)",
        request=JudgementInput,
        responses={
            201: JudgementOutput,
            200: JudgementOutput,
            409: OpenApiResponse(ERROR),
            **ERRORS,
        },
    )
    def post(self, request, project_id: int):
        project = project_for_api(user=request.user, project_id=project_id, min_role=Role.ANNOTATOR)
        data = JudgementInput(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        pair = _pair(project, d["pair"])
        facet = project.facets.filter(key=d["facet"]).first()
        if facet is None:
            raise ApplicationError(
                f'This project has no facet "{d["facet"]}".', extra={"field": "facet"}
            )
        judgement, created = judgement_record(
            pair=pair,
            facet=facet,
            user=request.user,
            choice=d["choice"],
            kind=d["kind"],
            shown_order=d["shown_order"],
            seconds_spent=d.get("seconds_spent"),
            rationale=d["rationale"],
            client_key=d["client_key"],
        )
        return Response(
            JudgementOutput(judgement).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


# --- snapshots -------------------------------------------------------------------------------


class SnapshotOutput(serializers.ModelSerializer):
    files = serializers.SerializerMethodField()
    notice = serializers.SerializerMethodField()

    class Meta:
        model = Snapshot
        fields = [
            "id",
            "project",
            "kind",
            "formats",
            "filters",
            "status",
            "progress",
            "message",
            "counts",
            "agreement",
            "checksum",
            "task_id",
            "created_at",
            "completed_at",
            "files",
            "notice",
        ]

    def get_notice(self, obj) -> str:
        """Set while the export waits for a job queue that could not be reached."""
        return QUEUE_DOWN_MESSAGE if obj.waiting_for_queue else ""

    def get_files(self, obj) -> list[str]:
        if not obj.is_done:
            return []
        return [n for n in obj.manifest.get("files", {}) if not n.startswith("images/")] + [
            "manifest.json"
        ]


class SnapshotInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=SnapshotKind.choices)
    formats = serializers.ListField(
        child=serializers.ChoiceField(choices=[*FORMATS, "all"]), required=False, max_length=4
    )
    platforms = serializers.ListField(
        child=serializers.ChoiceField(choices=Platform.choices), required=False, max_length=3
    )
    splits = serializers.ListField(
        child=serializers.ChoiceField(choices=Split.choices), required=False, max_length=3
    )
    min_confidence = serializers.FloatField(min_value=0, max_value=1, default=0.0)
    facets = serializers.ListField(
        child=serializers.SlugField(max_length=32), required=False, max_length=20
    )
    include_llm_only = serializers.BooleanField(default=False)
    include_imported = serializers.BooleanField(default=True)
    include_corrections = serializers.BooleanField(default=True)
    image_paths = serializers.ChoiceField(choices=IMAGE_PATH_MODES, default="absolute")


class SnapshotListCreateApi(_ProjectListApi):
    serializer_class = SnapshotOutput
    min_role = Role.ADMIN

    def filtered(self, project, f):
        return snapshot_list_for_project(project=project)

    @extend_schema(tags=["snapshots"], responses={200: SnapshotOutput, **ERRORS})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=["snapshots"],
        summary="Start an export (admins); poll the returned snapshot for status",
        request=SnapshotInput,
        responses={202: SnapshotOutput, **ERRORS},
    )
    def post(self, request, project_id: int):
        project = project_for_api(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        data = SnapshotInput(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        filters = snapshot_filters_build(
            kind=d["kind"],
            project=project,
            platforms=d.get("platforms"),
            splits=d.get("splits"),
            min_confidence=d["min_confidence"],
            facets=d.get("facets") or None,
            include_llm_only=d["include_llm_only"],
            include_imported=d["include_imported"],
            include_corrections=d["include_corrections"],
            image_paths=d["image_paths"],
        )
        snapshot = snapshot_create(
            user=request.user,
            project=project,
            kind=d["kind"],
            filters=filters,
            formats=snapshot_formats_parse(d.get("formats") or None),
        )
        return Response(SnapshotOutput(snapshot).data, status=status.HTTP_202_ACCEPTED)


def _snapshot(request, snapshot_id: int) -> Snapshot:
    if snapshot_id > MAX_ID:
        raise NotFound("No such snapshot.")
    return snapshot_get_for_user(user=request.user, snapshot_id=snapshot_id, min_role=Role.ADMIN)


class SnapshotDetailApi(APIView):
    @extend_schema(tags=["snapshots"], responses={200: SnapshotOutput, **ERRORS})
    def get(self, request, snapshot_id: int):
        return Response(SnapshotOutput(_snapshot(request, snapshot_id)).data)


class SnapshotCancelApi(APIView):
    @extend_schema(
        tags=["snapshots"],
        summary="Cancel a pending or running export (admins)",
        request=None,
        responses={200: SnapshotOutput, **ERRORS},
    )
    def post(self, request, snapshot_id: int):
        snapshot = _snapshot(request, snapshot_id)
        return Response(
            SnapshotOutput(snapshot_cancel(user=request.user, snapshot_id=snapshot.pk)).data
        )


class SnapshotRetryApi(APIView):
    @extend_schema(
        tags=["snapshots"],
        summary="Run a failed or cancelled export again (admins)",
        request=None,
        responses={202: SnapshotOutput, **ERRORS},
    )
    def post(self, request, snapshot_id: int):
        snapshot = _snapshot(request, snapshot_id)
        snapshot = snapshot_retry(user=request.user, snapshot_id=snapshot.pk)
        return Response(SnapshotOutput(snapshot).data, status=status.HTTP_202_ACCEPTED)


class SnapshotDownloadApi(APIView):
    @extend_schema(
        tags=["snapshots"],
        summary="Download one file of a completed snapshot (streamed)",
        parameters=[OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH)],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            409: OpenApiResponse(ERROR),
            **ERRORS,
        },
    )
    def get(self, request, snapshot_id: int, name: str):
        snapshot = _snapshot(request, snapshot_id)
        path = snapshot_file_path(snapshot=snapshot, name=name)
        return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)


# --- training rounds -------------------------------------------------------------------------
# Members read a project's rounds (status, progress, scores); admins start and cancel them.
# A round is trained by a worker on the `gpu` queue: creating one answers 202 and the client
# polls the round.


class RoundOutput(serializers.ModelSerializer):
    percent = serializers.IntegerField(read_only=True)
    notice = serializers.SerializerMethodField()

    def get_notice(self, obj) -> str:
        """Set while the round waits for a job queue that could not be reached."""
        waiting = obj.status == RoundStatus.QUEUED and not obj.external
        return QUEUE_DOWN_MESSAGE if waiting and obj.heartbeat_at is None else ""

    class Meta:
        model = TrainingRound
        fields = [
            "id",
            "project",
            "snapshot",
            "method",
            "base_model",
            "from_round",
            "paradigm",
            "negative_type",
            "hyperparameters",
            "options",
            "processes",
            "strategy",
            "world_size",
            "external",
            "status",
            "step",
            "total_steps",
            "percent",
            "loss",
            "margins",
            "attempts",
            "max_attempts",
            "cancel_requested",
            "checkpoint_path",
            "scores",
            "base_scores",
            "eval_count",
            "candidates_created",
            "error",
            "note",
            "label_run",
            "task_id",
            "created_at",
            "started_at",
            "finished_at",
            "notice",
        ]


class _WinRateOutput(serializers.Serializer):
    wins = serializers.FloatField(help_text="Judgements won; ties and both-bad count half")
    n = serializers.IntegerField(help_text="Human judgements of the round's candidates")
    rate = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True, help_text="Wilson 95% interval")
    high = serializers.FloatField(allow_null=True)


class RoundDetailOutput(RoundOutput):
    held_back = serializers.SerializerMethodField()
    human_win_rates = serializers.SerializerMethodField()

    class Meta(RoundOutput.Meta):
        fields = [*RoundOutput.Meta.fields, "history", "held_back", "human_win_rates"]

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField()))
    def get_held_back(self, obj) -> dict:
        """Feedback outputs the quality gate held back, per reason."""
        from modeltrain.selectors import round_held_back

        return {row["reason"]: row["n"] for row in round_held_back(round_=obj)}

    @extend_schema_field(serializers.DictField(child=_WinRateOutput()))
    def get_human_win_rates(self, obj) -> dict:
        """Per facet: how raters judged this round's candidates against the posts' best."""
        from modeltrain.human_eval import round_win_rates

        return round_win_rates(round_=obj)


class RoundFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=RoundStatus.choices, required=False)


class RoundInput(serializers.Serializer):
    snapshot = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    method = serializers.ChoiceField(choices=RoundMethod.choices, default=RoundMethod.MCMDPO)
    base_model = serializers.CharField(
        required=False, allow_blank=True, max_length=500, default="", trim_whitespace=True
    )
    from_round = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_ID, default=None
    )
    # Checked by the service against the ML library's lists (not imported here: the web tier
    # does not load torch).
    paradigm = serializers.CharField(
        max_length=20, default="both", help_text="frozen, sft_only, preference_only or both"
    )
    negative_type = serializers.CharField(
        max_length=16, default="noise", help_text="noise, blank, crop, rotate or swap"
    )
    hyperparameters = serializers.DictField(required=False, default=dict)
    options = serializers.DictField(required=False, default=dict)
    processes = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=64,
        help_text="training processes on the worker's machine; null: one per GPU it sees",
    )
    strategy = serializers.ChoiceField(
        choices=RoundStrategy.choices,
        required=False,
        allow_blank=True,
        default="",
        help_text="empty: ddp for LoRA, fsdp for full fine-tuning",
    )
    external = serializers.BooleanField(
        required=False, default=False, help_text="trained elsewhere and attached: not queued"
    )


@extend_schema(tags=["rounds"], parameters=[RoundFilter], responses={200: RoundOutput, **ERRORS})
class RoundListCreateApi(_ProjectListApi):
    # Admin-only like the rounds pages: rounds expose server paths (checkpoints) and cost.
    min_role = Role.ADMIN
    serializer_class = RoundOutput
    filter_serializer = RoundFilter

    def filtered(self, project, f):
        qs = round_list_for_project(project_id=project.pk).order_by("-id")
        if "status" in f:
            qs = qs.filter(status=f["status"])
        return qs

    @extend_schema(
        tags=["rounds"],
        summary="Start a training round (admins); poll the returned round for its progress",
        request=RoundInput,
        responses={202: RoundDetailOutput, **ERRORS},
    )
    def post(self, request, project_id: int):
        project = project_for_api(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        data = RoundInput(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        round_ = round_start(
            user=request.user,
            project_id=project.pk,
            snapshot_id=d["snapshot"],
            method=d["method"],
            base_model=d["base_model"],
            from_round_id=d["from_round"],
            paradigm=d["paradigm"],
            negative_type=d["negative_type"],
            hyperparameters=d["hyperparameters"],
            options=d["options"],
            processes=d["processes"],
            strategy=d["strategy"],
            external=d["external"],
        )
        return Response(RoundDetailOutput(round_).data, status=status.HTTP_202_ACCEPTED)


def _round(request, round_id: int) -> TrainingRound:
    if round_id > MAX_ID:
        raise NotFound("No such round.")
    return round_get_for_user(user=request.user, round_id=round_id, min_role=Role.ADMIN)


class RoundDetailApi(APIView):
    @extend_schema(tags=["rounds"], responses={200: RoundDetailOutput, **ERRORS})
    def get(self, request, round_id: int):
        return Response(RoundDetailOutput(_round(request, round_id)).data)


class RoundCancelApi(APIView):
    @extend_schema(
        tags=["rounds"],
        summary="Cancel a round (admins): a queued one at once, a running one between steps",
        request=None,
        responses={200: RoundDetailOutput, **ERRORS},
    )
    def post(self, request, round_id: int):
        round_ = _round(request, round_id)
        round_ = round_cancel(user=request.user, round_id=round_.pk)
        return Response(RoundDetailOutput(round_).data)


class RoundAttachInput(serializers.Serializer):
    output_dir = serializers.CharField(
        max_length=1000, help_text="the finished run's --output folder, an absolute server path"
    )


class RoundAttachApi(APIView):
    @extend_schema(
        tags=["rounds"],
        summary="Attach a finished external run (admins); the round then evaluates on the gpu queue",
        request=RoundAttachInput,
        responses={202: RoundDetailOutput, 409: OpenApiResponse(ERROR), **ERRORS},
    )
    def post(self, request, project_id: int, round_id: int):
        project = project_for_api(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        round_ = _round(request, round_id)
        if round_.project_id != project.pk:
            raise NotFound("No such round in this project.")
        data = RoundAttachInput(data=request.data)
        data.is_valid(raise_exception=True)
        round_ = round_attach(
            user=request.user, round_id=round_.pk, output_dir=data.validated_data["output_dir"]
        )
        return Response(RoundDetailOutput(round_).data, status=status.HTTP_202_ACCEPTED)
