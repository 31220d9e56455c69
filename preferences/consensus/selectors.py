"""Reads for blending: agreement per facet (percent, Cohen's κ LLM vs humans, Krippendorff's α),
per-rater reliability, consensus lists and flags, gold pairs for the queue, blind-first.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

from django.contrib.auth import get_user_model
from django.db.models import Count, Min, QuerySet

from annotate.models import Project
from preferences.models import (
    CandidatePair,
    ConsensusPending,
    Facet,
    Judgement,
    JudgementKind,
    LLMLabeler,
    PairSource,
)

from . import metrics
from .models import Consensus, ConsensusPolicy, RaterReliability


def consensus_policy_get(*, project: Project) -> ConsensusPolicy:
    """The project's policy, or an unsaved default one: the one way blending, the queue and the
    pages read it (only consensus_policy_update and a refit store a row)."""
    return ConsensusPolicy.objects.filter(project_id=project.pk).first() or ConsensusPolicy(
        project=project
    )


def consensus_pending(*, project: Project) -> dict:
    """How far the stored consensus is behind the answers: {"pairs": marked pairs waiting for a
    refresh, "since": when the oldest was marked (None when none waits)}."""
    row = ConsensusPending.objects.filter(project=project).aggregate(
        pairs=Count("pair_id"), since=Min("marked_at")
    )
    return {"pairs": row["pairs"], "since": row["since"]}


def _majority(labels: list[str]) -> str | None:
    """The strict plurality label, or None when the top is shared."""
    top = Counter(labels).most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def _facet_agreement(human: dict[int, list[str]], llm: dict[int, list[str]]) -> dict:
    """Agreement figures of one facet from {pair id: labels} of humans and of the LLM.

    κ compares, item by item, the LLM's label with the humans' strict-majority label (items
    without one are left out); with several LLM labelers each is compared and pooled.
    """
    units = list(human.values())
    percent, compared = metrics.percent_agreement(units)
    alpha = metrics.krippendorff_alpha_nominal(units)
    kappa_pairs = []
    for pair_id, llm_labels in llm.items():
        majority = _majority(human.get(pair_id, []))
        if majority is not None:
            kappa_pairs.extend((label, majority) for label in llm_labels)
    kappa = metrics.cohen_kappa(kappa_pairs)
    return {
        "judged_pairs": len(set(human) | set(llm)),
        "human_items": sum(1 for u in units if len(u) >= 2),
        "percent": None if percent is None else round(100 * percent, 1),
        "compared": compared,
        "alpha": None if alpha is None else round(alpha, 3),
        "kappa": None if kappa is None else round(kappa, 3),
        "kappa_items": len(kappa_pairs),
        "llm_agrees": (
            round(100 * sum(a == b for a, b in kappa_pairs) / len(kappa_pairs), 1)
            if kappa_pairs
            else None
        ),
    }


def _votes_by_facet(judgements: QuerySet[Judgement], key: str) -> tuple[dict, dict]:
    rows = judgements.filter(kind__in=[JudgementKind.HUMAN, JudgementKind.LLM]).values_list(
        key, "pair_id", "kind", "choice"
    )
    human: dict = defaultdict(lambda: defaultdict(list))
    llm: dict = defaultdict(lambda: defaultdict(list))
    for facet, pair_id, kind, choice in rows.iterator(chunk_size=5000):
        (human if kind == JudgementKind.HUMAN else llm)[facet][pair_id].append(choice)
    return human, llm


def agreement_for_judgements(*, judgements: QuerySet[Judgement]) -> dict[str, dict]:
    """{facet key: agreement figures} over any set of judgements (e.g. a snapshot's pairs)."""
    human, llm = _votes_by_facet(judgements, "facet__key")
    return {
        key: _facet_agreement(human.get(key, {}), llm.get(key, {}))
        for key in sorted(set(human) | set(llm))
    }


def agreement_by_facet(*, project: Project) -> list[dict]:
    """Per facet of the project: percent agreement among humans, κ (LLM vs human majority),
    α (humans), with the consensus and flagged counts for the dashboard."""
    human, llm = _votes_by_facet(Judgement.objects.filter(pair__post__project=project), "facet_id")
    consensus = Counter(
        Consensus.objects.filter(facet__project=project).values_list("facet_id", flat=True)
    )
    flagged = Counter(
        Consensus.objects.filter(facet__project=project, flagged=True).values_list(
            "facet_id", flat=True
        )
    )
    return [
        {
            "facet": facet,
            **_facet_agreement(human.get(facet.id, {}), llm.get(facet.id, {})),
            "consensus": consensus[facet.id],
            "flagged": flagged[facet.id],
        }
        for facet in Facet.objects.filter(project=project)
    ]


def rater_reliability_list(*, project: Project) -> list[dict]:
    """Every rater with judgements in the project: Dawid–Skene accuracy, gold accuracy, and
    agreement with the current consensus."""
    judgements = Judgement.objects.filter(
        pair__post__project=project, kind__in=[JudgementKind.HUMAN, JudgementKind.LLM]
    ).values_list("rater_user_id", "rater_llm_id", "pair_id", "facet_id", "choice")
    labels = {
        (p, f): label
        for p, f, label in Consensus.objects.filter(facet__project=project).values_list(
            "pair_id", "facet_id", "label"
        )
    }
    tally: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for user_id, llm_id, pair_id, facet_id, choice in judgements:
        key = ("llm", llm_id) if llm_id else ("user", user_id)
        tally[key][0] += 1
        if (pair_id, facet_id) in labels:
            tally[key][1] += 1
            tally[key][2] += labels[(pair_id, facet_id)] == choice
    rels = {
        (("llm", r.rater_llm_id) if r.rater_llm_id else ("user", r.rater_user_id)): r
        for r in RaterReliability.objects.filter(project=project)
    }
    users = get_user_model().objects.in_bulk([k[1] for k in tally | rels if k[0] == "user"])
    llms = LLMLabeler.objects.in_bulk([k[1] for k in tally | rels if k[0] == "llm"])
    out = []
    for key in sorted(set(tally) | set(rels), key=lambda k: (k[0], k[1] or 0)):
        n, compared, agree = tally.get(key, [0, 0, 0])
        rel = rels.get(key)
        who = users.get(key[1]) if key[0] == "user" else llms.get(key[1])
        gold = rel.gold_accuracy if rel else None
        out.append(
            {
                "kind": key[0],
                "name": who.get_username() if key[0] == "user" and who else str(who),
                "judgements": n,
                "consensus_agreement": round(100 * agree / compared, 1) if compared else None,
                "ds_accuracy": (
                    round(100 * rel.ds_accuracy, 1) if rel and rel.ds_accuracy is not None else None
                ),
                "gold_answers": rel.gold_answers if rel else 0,
                "gold_accuracy": None if gold is None else round(100 * gold, 1),
            }
        )
    return out


def consensus_list(
    *,
    project: Project,
    flagged_only: bool = False,
    facet_key: str | None = None,
    label: str | None = None,
) -> QuerySet[Consensus]:
    qs = Consensus.objects.filter(facet__project=project).select_related("facet", "pair")
    if flagged_only:
        qs = qs.filter(flagged=True)
    if facet_key:
        qs = qs.filter(facet__key=facet_key)
    if label:
        qs = qs.filter(label=label)
    return qs.order_by("confidence", "pair_id", "facet__position")


def consensus_flagged_for_review(*, project: Project) -> list[dict]:
    """Pairs with a facet whose consensus confidence is under the project's threshold,
    as [{"pair_id", "facets": [facet ids]}] (the shape of preferences.selectors.review_queue)."""
    by_pair: dict[int, list[int]] = defaultdict(list)
    for pair_id, facet_id in (
        Consensus.objects.filter(facet__project=project, flagged=True)
        .order_by("pair_id", "facet_id")
        .values_list("pair_id", "facet_id")
    ):
        by_pair[pair_id].append(facet_id)
    return [{"pair_id": p, "facets": f} for p, f in by_pair.items()]


def gold_pair_for_rater(
    *,
    project: Project,
    user,
    rng: random.Random | None = None,
    policy: ConsensusPolicy | None = None,
) -> CandidatePair | None:
    """A gold pair to slip into this rater's queue now, or None.

    Draws against the project's gold rate, then picks a gold pair the rater has neither
    judged nor been assigned. The queue calls this before choosing a normal pair and serves
    the result like any other pair (never marking it as gold).
    """
    rate = (policy or consensus_policy_get(project=project)).gold_rate
    if rate <= 0:
        return None
    rng = rng or random  # the module's shared generator: seeding a new one costs 100 µs a Next
    if rng.random() >= rate:
        return None
    candidates = (
        CandidatePair.objects.filter(post__project=project, source=PairSource.GOLD)
        .exclude(judgements__rater_user=user)
        .exclude(assignments__rater=user)
        .values_list("pk", flat=True)
    )
    ids = list(candidates[:200])
    return CandidatePair.objects.get(pk=rng.choice(ids)) if ids else None


def llm_verdicts_visible(
    *, project: Project, user, pair: CandidatePair, policy: ConsensusPolicy | None = None
) -> bool:
    """Whether the rater may see LLM verdicts for this pair now.

    With blind-first on (the default) only after the rater has submitted a judgement on it;
    the judge screen passes the answer to judgement_record(llm_verdict_visible=...).
    """
    if not (policy or consensus_policy_get(project=project)).blind_first:
        return True
    return Judgement.objects.filter(pair=pair, rater_user=user, kind=JudgementKind.HUMAN).exists()


def consensus_confidence_histogram(
    *, project: Project, bins: int = 10, facet_key: str | None = None
) -> list[dict]:
    """Consensus labels per confidence band: [{"low", "high", "count", "flagged"}], lowest band
    first; "flagged" counts the labels in the band that wait for review."""
    qs = Consensus.objects.filter(facet__project=project)
    if facet_key:
        qs = qs.filter(facet__key=facet_key)
    counts = [[0, 0] for _ in range(bins)]
    for confidence, flagged in qs.values_list("confidence", "flagged").iterator(chunk_size=5000):
        band = min(bins - 1, int(confidence * bins))
        counts[band][0] += 1
        counts[band][1] += flagged
    return [
        {"low": i / bins, "high": (i + 1) / bins, "count": n, "flagged": f}
        for i, (n, f) in enumerate(counts)
    ]


def llm_verdicts_readable(*, project: Project, user, pair: CandidatePair) -> bool:
    """Whether an API read may include LLM verdicts on this pair for this user.

    Reviewers and admins read every verdict (the consensus list is theirs); anyone else gets
    the judge screen's blind-first answer (llm_verdicts_visible), so no API undoes it.
    """
    from annotate.models import ROLE_RANK, Role
    from annotate.selectors import project_role

    role = project_role(project=project, user=user)
    if ROLE_RANK.get(role, 0) >= ROLE_RANK[Role.REVIEWER]:
        return True
    return llm_verdicts_visible(project=project, user=user, pair=pair)
