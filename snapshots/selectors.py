"""Reads for snapshots: which pairs and alt-texts go into an export, their consensus labels, and
agreement figures. Rows are streamed (iterator() = server-side cursors on PostgreSQL) so a
paper-scale export never holds the whole table in memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db.models import QuerySet
from django.db.models.fields.json import KeyTextTransform

from annotate.models import AltText, AltTextOrigin, Post, Project
from annotate.selectors import project_get_for_user
from core.errors import NotFound
from preferences.consensus.models import Consensus
from preferences.consensus.selectors import agreement_for_judgements
from preferences.models import (
    CandidatePair,
    Choice,
    Facet,
    FacetRole,
    Judgement,
    JudgementKind,
    PairSource,
)

from .models import Snapshot

CHUNK = 2000


@dataclass(frozen=True)
class Label:
    """The consensus answer for one pair and facet."""

    label: str  # A, B, tie or both-bad
    confidence: float  # the blended consensus's probability that the label is right
    votes: int
    method: str  # adjudication, weighted, dawid-skene


def overall_facet_keys(*, project_id: int | None) -> list[str]:
    """The key of the facet with the overall role: the project's, or (every project) each key
    that role goes by."""
    qs = Facet.objects.filter(role=FacetRole.OVERALL)
    if project_id is not None:
        qs = qs.filter(project_id=project_id)
    return sorted(set(qs.values_list("key", flat=True)))


@dataclass
class SnapshotFilters:
    """What an export selects. Stored on the Snapshot row as `as_dict()`."""

    project_id: int | None = None
    platforms: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    min_confidence: float = 0.0
    # The facets that decide a pair; empty: the overall-role facet (filled in on creation).
    facets: list[str] = field(default_factory=list)
    include_llm_only: bool = False
    include_imported: bool = True
    include_corrections: bool = True
    image_paths: str = "absolute"  # or "relative": images copied into the snapshot folder

    def __post_init__(self):
        if not self.facets:
            self.facets = overall_facet_keys(project_id=self.project_id)

    def as_dict(self) -> dict:
        return {
            "project_id": self.project_id,
            "platforms": sorted(self.platforms),
            "splits": sorted(self.splits),
            "min_confidence": self.min_confidence,
            "facets": list(self.facets),
            "include_llm_only": self.include_llm_only,
            "include_imported": self.include_imported,
            "include_corrections": self.include_corrections,
            "image_paths": self.image_paths,
        }


# --- consensus ------------------------------------------------------------------------------
# Exports read the blended consensus of preferences.consensus (weighted vote or Dawid–Skene,
# adjudication wins), the same labels the dashboard shows. `consensus_labels` is the one place
# that turns those rows into what the export rules need.

_ADJUDICATION = "adjudication"


def consensus_labels(
    *, judgements: QuerySet[Judgement], include_llm_only: bool = False
) -> dict[int, dict[str, Label]]:
    """{pair id: {facet key: Label}} for the pairs these judgements are on.

    Items whose only votes are the LLM's are left out unless `include_llm_only`. Reads the
    consensus as it stands: an export refreshes it first (snapshot_export).
    """
    rows = Consensus.objects.filter(pair_id__in=judgements.values("pair_id")).values_list(
        "pair_id", "facet__key", "label", "confidence", "method", "counts", "n_judgements"
    )
    result: dict[int, dict[str, Label]] = {}
    for pair_id, facet_key, label, confidence, method, counts, n in rows.iterator(chunk_size=CHUNK):
        llm_only = not counts.get(JudgementKind.HUMAN) and not counts.get(_ADJUDICATION)
        if llm_only and not include_llm_only:
            continue
        result.setdefault(pair_id, {})[facet_key] = Label(label, round(confidence, 6), n, method)
    return result


def pair_decision(
    *, known: str | None, labels: dict[str, Label], filters: SnapshotFilters
) -> tuple[str | None, str]:
    """Which side wins a pair under the filters, and why: (side or None, reason).

    Known preferences (imports, corrections) stand unless a reviewer adjudicated otherwise;
    judged pairs need every decision facet labelled A or B, confidently and on the same side.
    Ties and both-bad are never exported.
    """
    decisive = [labels.get(key) for key in filters.facets]
    if known is not None:
        adjudicated = [lab for lab in decisive if lab is not None and lab.method == "adjudication"]
        for lab in adjudicated:
            if lab.label not in (Choice.A, Choice.B):
                return None, lab.label
            if lab.label != known:
                return lab.label, "adjudicated"
        return known, "known"
    if any(lab is None for lab in decisive):
        return None, "unlabelled"
    sides = {lab.label for lab in decisive}
    if sides & {Choice.TIE, Choice.BOTH_BAD}:
        return None, "tie" if Choice.TIE in sides else Choice.BOTH_BAD
    if len(sides) > 1:
        return None, "facets-disagree"
    if min(lab.confidence for lab in decisive) < filters.min_confidence:
        return None, "low-confidence"
    return sides.pop(), "consensus"


# --- selections ------------------------------------------------------------------------------


def posts_for_filters(*, filters: SnapshotFilters) -> QuerySet[Post]:
    qs = Post.objects.all()
    if filters.project_id is not None:
        qs = qs.filter(project_id=filters.project_id)
    if filters.platforms:
        qs = qs.filter(platform__in=filters.platforms)
    if filters.splits:
        qs = qs.filter(split__in=filters.splits)
    return qs


def pairs_for_filters(*, filters: SnapshotFilters) -> QuerySet[CandidatePair]:
    # Gold pairs check raters; their bad sides are made up and are not training data.
    qs = CandidatePair.objects.filter(post__in=posts_for_filters(filters=filters)).exclude(
        source=PairSource.GOLD
    )
    if not filters.include_imported:
        qs = qs.exclude(source=PairSource.IMPORT, known_preference__isnull=False)
    if not filters.include_corrections:
        qs = qs.exclude(source=PairSource.CORRECTION, known_preference__isnull=False)
    return qs


def _known(source: str, known_preference: str | None) -> str | None:
    # Only imports and corrections carry a preference that stands without judging; a gold item's
    # known answer is there to check raters, not to train on.
    if source in (PairSource.IMPORT, PairSource.CORRECTION):
        return known_preference
    return None


PAIR_FIELDS = (
    "id",
    "source",
    "known_preference",
    "post_id",
    "post__platform",
    "post__context",
    "origin_dataset",
    "post__image__file",
    "post__image__sha256",
    "alt_a__text",
    "alt_b__text",
)


@dataclass(frozen=True)
class PaltRow:
    pair_id: int
    source: str
    decided_by: str
    post_id: int
    platform: str
    context: str
    origin_dataset: str  # as imported (provenance), "" when the post did not bring one
    image_file: str
    image_sha256: str
    chosen: str
    rejected: str
    labels: dict[str, Label]


def palt_count(*, filters: SnapshotFilters) -> int:
    return pairs_for_filters(filters=filters).count()


def palt_rows(*, filters: SnapshotFilters, skipped: Counter | None = None) -> Iterator[PaltRow]:
    """The preference records of a PAlt export, in pair-id order (stable across exports)."""
    pairs = pairs_for_filters(filters=filters)
    labels = consensus_labels(
        judgements=Judgement.objects.filter(pair__in=pairs),
        include_llm_only=filters.include_llm_only,
    )
    rows = pairs.order_by("id").annotate(
        origin_dataset=KeyTextTransform("origin_dataset", "post__provenance")
    )
    for row in rows.values_list(*PAIR_FIELDS).iterator(chunk_size=CHUNK):
        pid, source, known_pref, post_id, platform, context, prov, file, sha, a, b = row
        pair_labels = labels.get(pid, {})
        side, reason = pair_decision(
            known=_known(source, known_pref), labels=pair_labels, filters=filters
        )
        if side is None:
            if skipped is not None:
                skipped[reason] += 1
            continue
        chosen, rejected = (a, b) if side == "A" else (b, a)
        yield PaltRow(
            pair_id=pid,
            source=source,
            decided_by=reason,
            post_id=post_id,
            platform=platform,
            context=context,
            origin_dataset=prov or "",
            image_file=file,
            image_sha256=sha,
            chosen=chosen,
            rejected=rejected,
            labels=pair_labels,
        )


@dataclass(frozen=True)
class TaltRow:
    post_id: int
    platform: str
    context: str
    origin_dataset: str
    image_file: str
    image_sha256: str
    target: str
    tier: str


# Plain strings: comparing to the enum members costs an Enum.__eq__ call per row.
REFERENCE = AltTextOrigin.REFERENCE.value
HUMAN_CORRECTED = AltTextOrigin.HUMAN_CORRECTED.value
USER_WRITTEN = AltTextOrigin.USER_WRITTEN.value

# Best alt-text per post, highest first. "reference" only counts for the test split.
TIERS = ("reference", "adjudicated", "human-corrected", "consensus-winner", "user-written")


def _pair_winners(*, filters: SnapshotFilters) -> dict[int, tuple[int, float, int]]:
    """{post id: (tier rank, -confidence, alt id)} of the best pair winner per post."""
    pairs = pairs_for_filters(filters=filters)
    labels = consensus_labels(
        judgements=Judgement.objects.filter(pair__in=pairs),
        include_llm_only=filters.include_llm_only,
    )
    best: dict[int, tuple[int, float, int]] = {}
    rows = pairs.order_by("id").values_list(
        "id", "source", "known_preference", "post_id", "alt_a_id", "alt_b_id"
    )
    for pid, source, known_pref, post_id, a, b in rows.iterator(chunk_size=CHUNK):
        pair_labels = labels.get(pid, {})
        side, reason = pair_decision(
            known=_known(source, known_pref), labels=pair_labels, filters=filters
        )
        if side is None:
            continue
        adjudicated = any(
            pair_labels.get(k) and pair_labels[k].method == "adjudication" for k in filters.facets
        )
        rank = TIERS.index("adjudicated" if adjudicated else "consensus-winner")
        confidence = min(
            (pair_labels[k].confidence for k in filters.facets if k in pair_labels), default=1.0
        )
        candidate = (rank, -confidence, a if side == "A" else b)
        if post_id not in best or candidate < best[post_id]:
            best[post_id] = candidate
    return best


def talt_count(*, filters: SnapshotFilters) -> int:
    return posts_for_filters(filters=filters).count()


def talt_rows(
    *, filters: SnapshotFilters, use_reference: bool = False, skipped: Counter | None = None
) -> Iterator[TaltRow]:
    """One record per post with its best alt-text, in post-id order.

    Best = adjudicated pair winner > latest human correction > consensus (or known) pair winner
    > user-written; with use_reference (the test split) a reference alt-text comes first.
    """
    winners = _pair_winners(filters=filters)
    posts = posts_for_filters(filters=filters)
    alts = (
        AltText.objects.filter(post__in=posts)
        .order_by("post_id", "id")
        .annotate(origin_dataset=KeyTextTransform("origin_dataset", "post__provenance"))
        .values_list(
            "post_id",
            "id",
            "origin",
            "text",
            "post__platform",
            "post__context",
            "origin_dataset",
            "post__image__file",
            "post__image__sha256",
        )
    )
    current = None
    group: list[tuple] = []

    def pick(group):
        post_id = group[0][0]
        by_id = {g[1]: g for g in group}
        choice = None
        if use_reference:
            refs = [g for g in group if g[2] == REFERENCE]
            if refs:
                choice = (refs[-1], "reference")
        won = winners.get(post_id)
        if (
            choice is None
            and won is not None
            and TIERS[won[0]] == "adjudicated"
            and won[2] in by_id
        ):
            choice = (by_id[won[2]], "adjudicated")
        if choice is None:
            corrected = [g for g in group if g[2] == HUMAN_CORRECTED]
            if corrected:
                choice = (corrected[-1], "human-corrected")
        if choice is None and won is not None and won[2] in by_id:
            choice = (by_id[won[2]], TIERS[won[0]])
        if choice is None:
            written = [g for g in group if g[2] == USER_WRITTEN]
            if written:
                choice = (written[-1], "user-written")
        if choice is None:
            if skipped is not None:
                skipped["no-usable-alt-text"] += 1
            return None
        g, tier = choice
        return TaltRow(
            post_id=post_id,
            platform=g[4],
            context=g[5],
            origin_dataset=g[6] or "",
            image_file=g[7],
            image_sha256=g[8],
            target=g[3],
            tier=tier,
        )

    for row in alts.iterator(chunk_size=CHUNK):
        if row[0] != current:
            if group:
                picked = pick(group)
                if picked is not None:
                    yield picked
            current, group = row[0], []
        group.append(row)
    if group:
        picked = pick(group)
        if picked is not None:
            yield picked


# --- agreement -------------------------------------------------------------------------------


def agreement_by_facet(*, pair_ids_qs: QuerySet) -> dict[str, dict]:
    """Per facet key: the dashboard's agreement figures (percent, Krippendorff's α among humans,
    Cohen's κ of the LLM against the human majority) over the exported pairs only."""
    return agreement_for_judgements(judgements=Judgement.objects.filter(pair__in=pair_ids_qs))


# --- snapshot reads for pages and the API ----------------------------------------------------


def snapshot_list_for_project(*, project: Project) -> QuerySet[Snapshot]:
    return Snapshot.objects.filter(project=project).order_by("-id")


def snapshot_get_for_user(*, user, snapshot_id: int, min_role: str = "annotator") -> Snapshot:
    """The snapshot if the user may see it with `min_role`; non-members of its project get
    NotFound (as for the project itself), members below the role PermissionDenied."""
    snapshot = Snapshot.objects.filter(pk=snapshot_id).first()
    if snapshot is None or (snapshot.project_id is None and not user.is_staff):
        raise NotFound("No such snapshot.")
    if snapshot.project_id is not None:
        try:
            project_get_for_user(user=user, project_id=snapshot.project_id, min_role=min_role)
        except NotFound:
            raise NotFound("No such snapshot.") from None
    return snapshot
