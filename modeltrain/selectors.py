"""Reads for training rounds: which posts a round evaluates and writes candidates for, a post's
best alt-text, the rounds of a project with their score comparisons, and loss/margin curves."""

from __future__ import annotations

from django.db.models import Count, Min, QuerySet

from annotate.models import AltText, AltTextOrigin, Post, Role, Split
from annotate.selectors import project_get_for_user
from core.errors import NotFound

from .models import RoundOutput, RoundStatus, TrainingRound

# The test split's ground truth: the reference first, then what a rater or the data said is best.
REFERENCE_ORIGINS = [
    AltTextOrigin.REFERENCE,
    AltTextOrigin.HUMAN_CORRECTED,
    AltTextOrigin.IMPORTED_CHOSEN,
    AltTextOrigin.USER_WRITTEN,
]
SCORE_KEYS = ["bleu_1", "bleu_4", "cumulative_bleu_4", "METEOR", "ROUGE-L", "CIDEr"]


def eval_posts(*, project_id: int, limit: int | None = None) -> list[tuple[Post, str]]:
    """(post, reference text) for the project's test-split posts that have a reference."""
    posts = (
        Post.objects.filter(project_id=project_id, split=Split.TEST)
        .select_related("image")
        .order_by("id")
    )
    rows = []
    for post in posts.iterator(chunk_size=500):
        ref = _first_by_origin(post, REFERENCE_ORIGINS)
        if ref is not None:
            rows.append((post, ref.text))
            if limit and len(rows) >= int(limit):
                break
    return rows


def _first_by_origin(post: Post, origins) -> AltText | None:
    alts = list(AltText.objects.filter(post=post, origin__in=origins).order_by("-id"))
    for origin in origins:
        for alt in alts:
            if alt.origin == origin:
                return alt
    return None


def best_alt_text(*, post: Post) -> AltText | None:
    """The post's current best alt-text: a known/consensus pair winner, else by origin."""
    from preferences.consensus.models import Consensus
    from preferences.consensus.services import consensus_drain_for_pairs

    consensus_drain_for_pairs(post.pairs.values("pk"))
    winners = []
    for pair in post.pairs.exclude(source="model").order_by("-id"):
        if pair.known_preference in ("A", "B"):
            winners.append((1.0, pair.alt_a if pair.known_preference == "A" else pair.alt_b))
            continue
        overall = (
            Consensus.objects.filter(pair=pair, facet__key="overall")
            .values_list("label", "confidence")
            .first()
        )
        if overall and overall[0] in ("A", "B"):
            winners.append((overall[1], pair.alt_a if overall[0] == "A" else pair.alt_b))
    corrected = _first_by_origin(post, [AltTextOrigin.HUMAN_CORRECTED])
    if corrected is not None:
        return corrected
    if winners:
        return max(winners, key=lambda w: w[0])[1]
    return _first_by_origin(
        post, [AltTextOrigin.REFERENCE, AltTextOrigin.IMPORTED_CHOSEN, AltTextOrigin.USER_WRITTEN]
    )


def feedback_posts(*, project_id: int, limit: int) -> list[Post]:
    """Train-split posts to write new candidates for: posts with no pair yet, then those whose
    pairs have the lowest consensus confidence (where more labels help most)."""
    if limit <= 0:
        return []
    base = Post.objects.filter(project_id=project_id, split=Split.TRAIN).select_related("image")
    without_pairs = list(base.annotate(n=Count("pairs")).filter(n=0).order_by("id")[:limit])
    left = limit - len(without_pairs)
    uncertain = []
    if left > 0:
        uncertain = list(
            base.annotate(conf=Min("pairs__consensus__confidence"), n=Count("pairs"))
            .filter(n__gt=0)
            .order_by("conf", "id")[:left]
        )
    return without_pairs + uncertain


# --- pages ----------------------------------------------------------------------------------------


def round_list_for_project(*, project_id: int) -> QuerySet[TrainingRound]:
    return TrainingRound.objects.filter(project_id=project_id).select_related(
        "snapshot", "from_round"
    )


def round_get_for_user(*, user, round_id: int, min_role: str = Role.ANNOTATOR) -> TrainingRound:
    round_ = TrainingRound.objects.filter(pk=round_id).select_related("snapshot", "project").first()
    if round_ is None:
        raise NotFound("No such round.")
    project_get_for_user(user=user, project_id=round_.project_id, min_role=min_role)
    return round_


def round_previous(*, round_: TrainingRound) -> TrainingRound | None:
    """The round this one continues, else the latest earlier done round of the project."""
    if round_.from_round_id:
        return round_.from_round
    return (
        TrainingRound.objects.filter(
            project_id=round_.project_id, status=RoundStatus.DONE, pk__lt=round_.pk
        )
        .order_by("-pk")
        .first()
    )


def round_comparison(*, round_: TrainingRound) -> list[dict]:
    """Rows metric → this round, the previous round, the base model, with differences."""
    previous = round_previous(round_=round_)
    rows = []
    for key in [*SCORE_KEYS, "edit_distance"]:
        value = round_.scores.get(key)
        prev = previous.scores.get(key) if previous else None
        base = round_.base_scores.get(key)
        rows.append(
            {
                "metric": key,
                "value": value,
                "previous": prev,
                "base": base,
                "vs_previous": None if value is None or prev is None else value - prev,
                "vs_base": None if value is None or base is None else value - base,
            }
        )
    return rows


def round_candidates(*, round_: TrainingRound) -> QuerySet[RoundOutput]:
    return RoundOutput.objects.filter(
        round=round_, purpose=RoundOutput.Purpose.FEEDBACK, pair__isnull=False
    ).select_related("pair", "alt_text", "post")


def round_curve_svg(*, round_: TrainingRound, width: int = 480, height: int = 160) -> dict | None:
    """Polylines for loss and each margin (server-side SVG); None without points."""
    points = [p for p in round_.history if isinstance(p, dict) and p.get("step") is not None]
    if not points:
        return None
    series = {"loss": [(p["step"], p.get("loss")) for p in points]}
    for p in points:
        for name, value in (p.get("margins") or {}).items():
            series.setdefault(f"margin {name}", []).append((p["step"], value))
    values = [v for s in series.values() for _, v in s if isinstance(v, int | float)]
    if not values:
        return None
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    max_step = max(p["step"] for p in points) or 1
    pad = 8

    def xy(step, value):
        x = pad + (width - 2 * pad) * step / max_step
        y = pad + (height - 2 * pad) * (1 - (value - lo) / span)
        return f"{x:.1f},{y:.1f}"

    palette = [
        "#1f4e9c",
        "#c2410c",
        "#15803d",
        "#7c3aed",
        "#b91c1c",
        "#0e7490",
        "#a16207",
        "#4b5563",
    ]
    lines = []
    for i, (name, pts) in enumerate(series.items()):
        coords = " ".join(xy(s, v) for s, v in pts if isinstance(v, int | float))
        if coords:
            lines.append({"name": name, "points": coords, "colour": palette[i % len(palette)]})
    return {"width": width, "height": height, "lines": lines, "lo": lo, "hi": hi, "steps": max_step}


def round_base_for_launch(*, round_: TrainingRound) -> str:
    """The base model a launch line names: the round's base, or the previous round's model."""
    if round_.from_round_id:
        return round_.from_round.checkpoint_path
    return round_.base_model


def round_launch_line(
    *,
    round_: TrainingRound,
    nodes: int,
    snapshot_dir: str,
    output_dir: str,
    base: str | None = None,
    processes_per_node: int | None = None,
    main_process_ip: str = "$MAIN_PROCESS_IP",
    main_process_port: int = 29500,
    fsdp_wrap: list[str] | None = None,
) -> str:
    """The shell line each machine of a multi-node run executes for this round (machine ranks
    0..nodes-1 through $MACHINE_RANK). Pure: the config file it names is written by the
    round_launch_command management command (services.round_config_write)."""
    import shlex

    from modeltrain.mcmdpo.launch import launch_command

    argv = launch_command(
        strategy=round_.strategy,
        processes=processes_per_node or round_.processes or 8,
        nodes=nodes,
        machine_rank="$MACHINE_RANK",
        main_process_ip=main_process_ip,
        main_process_port=main_process_port,
        snapshot=snapshot_dir,
        base=base or round_base_for_launch(round_=round_),
        method=round_.method,
        output=output_dir,
        config=f"{output_dir}/config.json",
        fsdp_wrap=fsdp_wrap,
        python="python",
    )
    # $VARIABLES stay unquoted so each machine's shell fills them in.
    return " ".join(a if a.startswith("$") else shlex.quote(a) for a in argv)
