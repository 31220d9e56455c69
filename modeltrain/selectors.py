"""Reads for training rounds: which posts a round evaluates and writes candidates for, a post's
best alt-text, the rounds of a project with their score comparisons, and loss/margin curves."""

from __future__ import annotations

from django.db.models import Count, Min, QuerySet

from annotate.models import AltText, AltTextOrigin, Post, Role, Split
from annotate.selectors import project_get_for_user
from core.errors import NotFound
from preferences.models import Facet, FacetRole

from .models import RoundOutput, RoundStatus, TrainingRound

# The test split's ground truth: the reference first, then what a rater or the data said is best.
REFERENCE_ORIGINS = [
    AltTextOrigin.REFERENCE,
    AltTextOrigin.HUMAN_CORRECTED,
    AltTextOrigin.IMPORTED_CHOSEN,
    AltTextOrigin.USER_WRITTEN,
]
SCORE_KEYS = ["bleu_1", "bleu_4", "cumulative_bleu_4", "METEOR", "ROUGE-L", "CIDEr"]


def overall_facet_key(*, project_id: int) -> str:
    """The key of the project's facet with the overall role ("" when it has none)."""
    facet = Facet.objects.filter(project_id=project_id, role=FacetRole.OVERALL).first()
    return facet.key if facet else ""


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

    winners = []
    for pair in post.pairs.exclude(source="model").order_by("-id"):
        if pair.known_preference in ("A", "B"):
            winners.append((1.0, pair.alt_a if pair.known_preference == "A" else pair.alt_b))
            continue
        overall = (
            Consensus.objects.filter(pair=pair, facet__role=FacetRole.OVERALL)
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


def round_held_back(*, round_: TrainingRound) -> list[dict]:
    """Feedback outputs the quality gate held back, counted per reason (most first)."""
    from .quality import REASONS

    counts = (
        RoundOutput.objects.filter(round=round_, purpose=RoundOutput.Purpose.FEEDBACK)
        .exclude(held_back="")
        .values("held_back")
        .annotate(n=Count("id"))
        .order_by("-n", "held_back")
    )
    return [
        {"reason": c["held_back"], "label": REASONS[c["held_back"]], "n": c["n"]} for c in counts
    ]


def round_held_back_outputs(*, round_: TrainingRound) -> QuerySet[RoundOutput]:
    return (
        RoundOutput.objects.filter(round=round_, purpose=RoundOutput.Purpose.FEEDBACK)
        .exclude(held_back="")
        .select_related("post")
    )


# A round's writer in the side-by-side view: "12" (round 12's model) or "12:base" (its base).
def writer_parse(value: str) -> tuple[int, str] | None:
    round_id, _, model = (value or "").partition(":")
    if not round_id.isdigit() or model not in ("", "base"):
        return None
    return int(round_id), model or "trained"


def writer_choices(*, project_id: int) -> list[tuple[str, str]]:
    """(value, label) for every round (and its base model) that wrote something."""
    seen = (
        RoundOutput.objects.filter(round__project_id=project_id)
        .values_list("round_id", "model")
        .distinct()
        .order_by("-round_id", "model")
    )
    return [
        (f"{rid}" if model == "trained" else f"{rid}:base",
         f"Round {rid}" if model == "trained" else f"Round {rid}'s base model")
        for rid, model in seen
    ]  # fmt: skip


def outputs_side_by_side(
    *, project_id: int, left: tuple[int, str], right: tuple[int, str], limit: int = 200
) -> list[dict]:
    """Posts both writers wrote for (same purpose), with both texts and the reference."""

    def texts(writer):
        rows = RoundOutput.objects.filter(
            round__project_id=project_id, round_id=writer[0], model=writer[1]
        ).select_related("post", "post__image", "pair__alt_b")
        return {(o.post_id, o.purpose): o for o in rows}

    def opponent(out):  # a feedback pair's other side: the post's best alt-text then
        return out.pair.alt_b.text if out.pair_id else ""

    a, b = texts(left), texts(right)
    rows = []
    for key in sorted(set(a) & set(b), key=lambda k: (k[1], k[0])):
        out_a, out_b = a[key], b[key]
        rows.append(
            {
                "post": out_a.post,
                "purpose": out_a.get_purpose_display(),
                "reference": out_a.reference
                or out_b.reference
                or opponent(out_a)
                or opponent(out_b),
                "left": out_a,
                "right": out_b,
                "same": out_a.text.strip() == out_b.text.strip(),
            }
        )
        if len(rows) >= limit:
            break
    return rows


# --- the loss and margin chart --------------------------------------------------------------------

CHART = {"width": 640, "height": 280, "left": 64, "right": 16, "top": 16, "bottom": 48}
MAX_MARKERS = 40  # focusable points per series; the table under the chart has up to 200 steps


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten apart)."""
    import math

    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 12))
    return ticks


def _sampled(points: list, limit: int) -> list:
    if len(points) <= limit:
        return points
    stride = (len(points) - 1) / (limit - 1)
    return [points[round(i * stride)] for i in range(limit)]


def round_curve_svg(*, round_: TrainingRound) -> dict | None:
    """Server-side SVG of loss and each margin by step: axes with ticks and labels, one series per
    line, focusable markers whose values show on hover and focus; None without points."""
    points = [p for p in round_.history if isinstance(p, dict) and p.get("step") is not None]
    series = {"loss": [(p["step"], p.get("loss")) for p in points]}
    for p in points:
        for name, value in (p.get("margins") or {}).items():
            series.setdefault(f"margin {name}", []).append((p["step"], value))
    series = {
        name: [(s, float(v)) for s, v in pts if _is_number(v)] for name, pts in series.items()
    }
    series = {name: pts for name, pts in series.items() if pts}
    if not series:
        return None
    values = [v for pts in series.values() for _, v in pts]
    y_ticks = _nice_ticks(min(values), max(values))
    lo, hi = y_ticks[0], y_ticks[-1]
    max_step = max(s for pts in series.values() for s, _ in pts) or 1
    x_ticks = [t for t in _nice_ticks(0, max_step, 6) if float(t).is_integer()]
    x_hi = max(max_step, x_ticks[-1] if x_ticks else max_step)
    c = CHART
    plot_w = c["width"] - c["left"] - c["right"]
    plot_h = c["height"] - c["top"] - c["bottom"]

    def x(step):
        return c["left"] + plot_w * step / x_hi

    def y(value):
        return c["top"] + plot_h * (1 - (value - lo) / ((hi - lo) or 1.0))

    lines = []
    for i, (name, pts) in enumerate(series.items()):
        lines.append(
            {
                "name": name,
                "css": f"series-{i % 8}",
                "points": " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in pts),
                "markers": [
                    {"x": f"{x(s):.1f}", "y": f"{y(v):.1f}", "step": s, "value": v}
                    for s, v in _sampled(pts, MAX_MARKERS)
                ],
            }
        )
    table_steps = _sampled(sorted({s for pts in series.values() for s, _ in pts}), 200)
    by_name = {name: dict(pts) for name, pts in series.items()}
    return {
        **c,
        "plot_right": c["width"] - c["right"],
        "plot_bottom": c["height"] - c["bottom"],
        "x_label_y": c["height"] - 8,
        "y_label_x": 16,
        "y_label_cy": c["top"] + plot_h / 2,
        "x_ticks": [{"pos": f"{x(t):.1f}", "label": f"{int(t)}"} for t in x_ticks],
        "y_ticks": [{"pos": f"{y(t):.1f}", "label": f"{t:g}"} for t in y_ticks],
        "lines": lines,
        "steps": max_step,
        "table": [
            {"step": s, "values": [by_name[name].get(s) for name in series]} for s in table_steps
        ],
    }


def _is_number(value) -> bool:
    import math

    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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
