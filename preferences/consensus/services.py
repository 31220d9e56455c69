"""Writes for blending: the refresh of marked pairs, full recomputes, Dawid–Skene refits, gold
items and gold accuracy, the per-project policy, and adjudication.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import Counter, defaultdict
from pathlib import PurePosixPath

import numpy as np
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from annotate.models import AltText, AltTextOrigin, Project
from core.errors import ApplicationError
from preferences.models import (
    CandidatePair,
    Choice,
    ConsensusPending,
    Facet,
    Judgement,
    JudgementKind,
    PairSource,
    Side,
)
from preferences.services import judgement_record

from . import metrics
from .models import (
    GOLD_FACET_ROLES,
    Consensus,
    ConsensusPolicy,
    GoldItem,
    GoldKind,
    Method,
    RaterReliability,
)
from .selectors import consensus_policy_get

logger = logging.getLogger(__name__)

LABELS = list(Choice.values)  # A, B, tie, both-bad: the index order of every matrix here
LABEL_INDEX = {label: i for i, label in enumerate(LABELS)}
# Before a Dawid–Skene fit, a rater is assumed right this often (the rest spread evenly).
DEFAULT_ACCURACY = {JudgementKind.HUMAN: 0.75, JudgementKind.LLM: 0.65}
# An LLM verdict whose two orders disagreed counts this much of a normal LLM vote.
FLIPPED_FACTOR = 0.5
GOLD_WEIGHT_FLOOR = 0.1


def consensus_policy_update(*, project: Project, **fields) -> ConsensusPolicy:
    """Change blending settings; values are checked here so a form or API gets a clear error."""
    policy, _ = ConsensusPolicy.objects.get_or_create(project=project)
    allowed = {
        "method",
        "weight_adjudication",
        "weight_human",
        "weight_llm",
        "review_threshold",
        "blind_first",
        "gold_rate",
        "gold_downweight",
        "gold_min_answers",
    }
    unknown = set(fields) - allowed
    if unknown:
        raise ApplicationError(f"Unknown settings: {', '.join(sorted(unknown))}.")
    if "method" in fields and fields["method"] not in (Method.WEIGHTED, Method.DAWID_SKENE):
        raise ApplicationError('The method must be "weighted" or "dawid-skene".')
    for key in ("weight_adjudication", "weight_human", "weight_llm"):
        if key in fields and not (0 <= float(fields[key]) <= 100):
            raise ApplicationError(f"{key.replace('_', ' ')} must be between 0 and 100.")
    if "review_threshold" in fields and not (0 <= float(fields["review_threshold"]) <= 1):
        raise ApplicationError("The review threshold must be between 0 and 1.")
    if "gold_rate" in fields and not (0 <= float(fields["gold_rate"]) <= 0.5):
        raise ApplicationError("The gold rate must be between 0 and 0.5.")
    if "gold_min_answers" in fields and not (1 <= int(fields["gold_min_answers"]) <= 1000):
        raise ApplicationError("The gold minimum must be between 1 and 1000.")
    for key, value in fields.items():
        setattr(policy, key, value)
    policy.save()
    return policy


# --- Building consensus values -------------------------------------------------------------


def _rater_key(j: Judgement) -> tuple[str, int]:
    return ("llm", j.rater_llm_id) if j.kind == JudgementKind.LLM else ("user", j.rater_user_id)


def _default_confusion(kind: str) -> np.ndarray:
    p = DEFAULT_ACCURACY.get(kind, 0.75)
    k = len(LABELS)
    return np.full((k, k), (1 - p) / (k - 1)) + np.eye(k) * (p - (1 - p) / (k - 1))


def _reliabilities(*, project_id: int, judgements: list[Judgement]) -> dict:
    users = {j.rater_user_id for j in judgements if j.rater_user_id}
    llms = {j.rater_llm_id for j in judgements if j.rater_llm_id}
    rows = RaterReliability.objects.filter(project_id=project_id).filter(
        Q(rater_user_id__in=users) | Q(rater_llm_id__in=llms)
    )
    return {
        (("user", r.rater_user_id) if r.rater_user_id else ("llm", r.rater_llm_id)): r for r in rows
    }


def _project_reliabilities(project_id: int) -> dict:
    return {
        (("user", r.rater_user_id) if r.rater_user_id else ("llm", r.rater_llm_id)): r
        for r in RaterReliability.objects.filter(project_id=project_id)
    }


def _gold_factor(rel: RaterReliability | None, policy: ConsensusPolicy) -> float:
    if not (policy.gold_downweight and rel and rel.gold_answers >= policy.gold_min_answers):
        return 1.0
    return max(GOLD_WEIGHT_FLOOR, rel.gold_accuracy or 0.0)


def _top(scores: dict[str, float]) -> str:
    best = max(scores.values())
    top = [label for label in LABELS if scores.get(label, 0) == best]
    if len(top) == 1:
        return top[0]
    # A dead heat between A and B means neither side is preferred: a tie, not a coin flip.
    if Choice.A in top and Choice.B in top:
        return Choice.TIE
    return top[0]


def _consensus_values(judgements: list[Judgement], *, policy: ConsensusPolicy, rels: dict) -> dict:
    """The consensus fields for one item's judgements (no queries)."""
    kind_weight = {
        JudgementKind.ADJUDICATION: policy.weight_adjudication,
        JudgementKind.HUMAN: policy.weight_human,
        JudgementKind.LLM: policy.weight_llm,
    }
    counts: dict[str, Counter] = {k: Counter() for k in JudgementKind.values}
    scores = {label: 0.0 for label in LABELS}
    votes = []
    adjudications = []
    for j in judgements:
        counts[j.kind][j.choice] += 1
        if j.kind == JudgementKind.ADJUDICATION:
            adjudications.append(j)
        rel = rels.get(_rater_key(j))
        verdict = getattr(j, "llm_verdict", None) if j.kind == JudgementKind.LLM else None
        flipped = bool(verdict and verdict.flipped)
        weight = kind_weight[j.kind] * _gold_factor(rel, policy)
        if flipped:
            weight *= FLIPPED_FACTOR
        scores[j.choice] += weight
        if j.kind != JudgementKind.ADJUDICATION:
            confusion = (
                np.asarray(rel.confusion) if rel and rel.confusion else _default_confusion(j.kind)
            )
            if flipped:
                # A position-dependent tie says little: blend its row towards uniform.
                confusion = 0.5 * confusion + 0.5 / len(LABELS)
            votes.append((confusion, LABEL_INDEX[j.choice]))

    total = sum(scores.values())
    posterior = None
    if votes:
        prior = np.asarray(policy.ds_prior or [1.0 / len(LABELS)] * len(LABELS))
        posterior = metrics.posterior_for_item(votes, prior)
    if adjudications:
        latest = max(adjudications, key=lambda j: (j.created_at, j.pk))
        label, confidence, method = latest.choice, 1.0, Method.ADJUDICATION
    elif policy.method == Method.DAWID_SKENE and posterior is not None:
        best = int(posterior.argmax())
        label, confidence, method = LABELS[best], float(posterior[best]), Method.DAWID_SKENE
    else:
        label = _top(scores) if total else Choice.TIE
        # Confidence is the probability that the voted label is right given who voted
        # (reliabilities, or defaults before a fit), not the vote share: one lone vote, or a
        # position-flipped LLM tie, must not look certain.
        confidence = float(posterior[LABEL_INDEX[label]]) if posterior is not None else 0.0
        method = Method.WEIGHTED

    human = counts[JudgementKind.HUMAN]
    n_human = sum(human.values())
    return dict(
        label=label,
        confidence=max(0.0, min(1.0, confidence)),
        method=method,
        weights={k: float(v) for k, v in kind_weight.items()},
        scores={k: round(v, 4) for k, v in scores.items() if v},
        counts={k: dict(v) for k, v in counts.items() if v},
        n_judgements=len(judgements),
        human_agreement=(human[label] / n_human) if n_human else None,
        flagged=method != Method.ADJUDICATION and confidence < policy.review_threshold,
    )


_UPSERT_FIELDS = [
    "label",
    "confidence",
    "method",
    "weights",
    "scores",
    "counts",
    "n_judgements",
    "human_agreement",
    "flagged",
    "updated_at",
]


def _upsert(rows: list[Consensus]) -> None:
    # One INSERT … ON CONFLICT (pair, facet) DO UPDATE: safe when two updates race.
    Consensus.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["pair", "facet"],
        update_fields=_UPSERT_FIELDS,
        batch_size=500,
    )


def consensus_update_for(*, pair: CandidatePair, facet: Facet) -> Consensus | None:
    """Rebuild the consensus of one pair and facet from its judgements (cheap: one item).

    Uses the project's policy weights and the last Dawid–Skene fit (stored reliabilities).
    Returns None when no judgement is left (the consensus row is removed). Not on any write
    path (consensus_refresh rebuilds marked pairs in batches); tests compare the batch with it
    and bench_consensus times it.
    """
    judgements = list(
        Judgement.objects.filter(pair=pair, facet=facet).select_related("llm_verdict")
    )
    if not judgements:
        Consensus.objects.filter(pair=pair, facet=facet).delete()
        return None
    policy = consensus_policy_get(project=Project(pk=facet.project_id))
    rels = _reliabilities(project_id=facet.project_id, judgements=judgements)
    values = _consensus_values(judgements, policy=policy, rels=rels)
    row = Consensus(pair=pair, facet=facet, updated_at=timezone.now(), **values)
    _upsert([row])
    return row


def _rebuild_pairs(pair_ids: set[int], *, only: set[tuple[int, int]] | None = None) -> int:
    """Rebuild the consensus of these pairs (every facet, or the (pair, facet) items in
    `only`) from their judgements as they stand; items left without judgements lose their
    row. Loads judgements, policies and reliabilities once per call. Returns items rebuilt."""
    by_item: dict[tuple[int, int], list[Judgement]] = defaultdict(list)
    for j in (
        Judgement.objects.filter(pair_id__in=pair_ids)
        .select_related("llm_verdict", "facet")
        .order_by("id")
        .iterator(chunk_size=5000)
    ):
        if only is None or (j.pair_id, j.facet_id) in only:
            by_item[(j.pair_id, j.facet_id)].append(j)
    now = timezone.now()
    rows = []
    contexts: dict[int, tuple[ConsensusPolicy, dict]] = {}
    for (pair_id, facet_id), items in by_item.items():
        project_id = items[0].facet.project_id
        if project_id not in contexts:
            contexts[project_id] = (
                consensus_policy_get(project=Project(pk=project_id)),
                _project_reliabilities(project_id),
            )
        policy, rels = contexts[project_id]
        rows.append(
            Consensus(
                pair_id=pair_id,
                facet_id=facet_id,
                updated_at=now,
                **_consensus_values(items, policy=policy, rels=rels),
            )
        )
    _upsert(rows)
    if only is None:  # an undo can leave a facet of the pair with no judgement at all
        gone = [
            pk
            for pk, pair_id, facet_id in Consensus.objects.filter(pair_id__in=pair_ids).values_list(
                "pk", "pair_id", "facet_id"
            )
            if (pair_id, facet_id) not in by_item
        ]
        if gone:
            Consensus.objects.filter(pk__in=gone).delete()
    return len(rows)


# --- The refresh: marked pairs rebuilt ---------------------------------------------------

_REFRESH_SQL = """
    DELETE FROM consensus_consensuspending
    WHERE pair_id IN (SELECT pair_id FROM consensus_consensuspending
                      WHERE project_id = %s ORDER BY marked_at LIMIT %s{lock})
    RETURNING pair_id"""


def consensus_refresh(*, project_id: int | None, batch: int = 1000) -> int:
    """Rebuild the consensus (and gold accuracy) of the project's marked pairs, oldest first;
    return how many pairs. The one way consensus is brought up to date: the `consensus.refresh`
    task runs it after writes (preferences.marks), exports and rounds run it before they read.

    Each batch is one transaction that deletes its marks *before* reading judgements: a Submit
    committing meanwhile waits on that delete and then marks its pair again, so an answer is
    never left out. Concurrent refreshes take disjoint rows (SKIP LOCKED). A failed rebuild
    rolls back and leaves its marks. `project_id=None` refreshes every project with marks (an
    export across projects).
    """
    if project_id is None:
        projects = ConsensusPending.objects.values_list("project_id", flat=True).distinct()
        return sum(consensus_refresh(project_id=pk, batch=batch) for pk in list(projects))
    lock = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    done = 0
    while True:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(_REFRESH_SQL.format(lock=lock), [project_id, batch])
                pair_ids = {row[0] for row in cursor.fetchall()}
            if not pair_ids:
                return done
            _rebuild_pairs(pair_ids)
            if CandidatePair.objects.filter(pk__in=pair_ids, source=PairSource.GOLD).exists():
                gold_accuracy_refresh(project=Project(pk=project_id))
        done += len(pair_ids)


def consensus_recompute(*, project: Project) -> int:
    """Rebuild every consensus of a project (after a refit or a policy change); return how many
    pairs. Every pair with judgements or a consensus row is marked, and the one refresh
    rebuilds them, so a recompute and the refresh after a write share one rebuild."""
    pair_ids = set(
        Judgement.objects.filter(pair__post__project=project).values_list("pair_id", flat=True)
    ) | set(Consensus.objects.filter(facet__project=project).values_list("pair_id", flat=True))
    now = timezone.now()
    ConsensusPending.objects.bulk_create(
        [ConsensusPending(pair_id=pk, project_id=project.pk, marked_at=now) for pk in pair_ids],
        ignore_conflicts=True,
        batch_size=5000,
    )
    return consensus_refresh(project_id=project.pk)


def adjudication_record(
    *, pair: CandidatePair, user, answers: dict[Facet, str], rationale: str = ""
) -> list[Judgement]:
    """A reviewer's ruling on a disputed pair: one adjudication per facet, all in one
    transaction, so a refused facet (a role check, a conflicting earlier ruling) stores none."""
    with transaction.atomic():
        return [
            judgement_record(
                pair=pair,
                facet=facet,
                user=user,
                choice=choice,
                kind=JudgementKind.ADJUDICATION,
                rationale=rationale,
            )[0]
            for facet, choice in answers.items()
        ]


# --- Dawid–Skene refit ------------------------------------------------------------------


def reliability_fit(*, project: Project, recompute: bool = True) -> dict:
    """Fit Dawid–Skene on the project's human and LLM judgements and store each rater's
    confusion matrix; adjudications and gold answers pin their items' true labels.
    """
    rows = list(
        Judgement.objects.filter(pair__post__project=project).values_list(
            "pair_id", "facet_id", "kind", "rater_user_id", "rater_llm_id", "choice", "created_at"
        )
    )
    gold = {
        g.pair_id: (g.pair.known_preference, set(g.facet_keys))
        for g in GoldItem.objects.filter(pair__post__project=project).select_related("pair")
    }
    facet_keys = dict(Facet.objects.filter(project=project).values_list("id", "key"))
    items: dict[tuple, int] = {}
    raters: dict[tuple, int] = {}
    observations = []
    fixed: dict[int, int] = {}
    adjudicated: dict[int, tuple] = {}
    for pair_id, facet_id, kind, user_id, llm_id, choice, created in rows:
        item = items.setdefault((pair_id, facet_id), len(items))
        if kind == JudgementKind.ADJUDICATION:
            if item not in adjudicated or created > adjudicated[item][0]:
                adjudicated[item] = (created, LABEL_INDEX[choice])
            continue
        rater = raters.setdefault(("llm", llm_id) if llm_id else ("user", user_id), len(raters))
        observations.append((item, rater, LABEL_INDEX[choice]))
        known = gold.get(pair_id)
        if known and known[0] and facet_keys.get(facet_id) in known[1]:
            fixed[item] = LABEL_INDEX[known[0]]
    fixed.update({item: label for item, (_, label) in adjudicated.items()})
    if not observations:
        return {"raters": 0, "items": len(items)}
    _, prior, confusion = metrics.dawid_skene(
        observations, n_items=len(items), n_raters=len(raters), n_labels=len(LABELS), fixed=fixed
    )
    per_rater = Counter(r for _, r, _ in observations)
    now = timezone.now()
    with transaction.atomic():
        for (kind, rater_id), r in raters.items():
            rel = _reliability_row(project=project, kind=kind, rater_id=rater_id)
            rel.confusion = confusion[r].round(6).tolist()
            rel.ds_accuracy = float((prior * np.diag(confusion[r])).sum())
            rel.n_judgements = per_rater[r]
            rel.fitted_at = now
            rel.save()
        policy, _ = ConsensusPolicy.objects.get_or_create(project=project)
        policy.ds_prior = prior.round(6).tolist()
        policy.ds_fitted_at = now
        policy.save(update_fields=["ds_prior", "ds_fitted_at"])
    gold_accuracy_refresh(project=project)
    if recompute:
        consensus_recompute(project=project)
    return {"raters": len(raters), "items": len(items), "prior": prior.round(4).tolist()}


def _reliability_row(*, project: Project, kind: str, rater_id: int) -> RaterReliability:
    lookup = {"rater_llm_id": rater_id} if kind == "llm" else {"rater_user_id": rater_id}
    rel, _ = RaterReliability.objects.get_or_create(project=project, **lookup)
    return rel


# --- Gold items -------------------------------------------------------------------------

GOOD_ORIGINS = [
    AltTextOrigin.HUMAN_CORRECTED,
    AltTextOrigin.IMPORTED_CHOSEN,
    AltTextOrigin.REFERENCE,
    AltTextOrigin.USER_WRITTEN,
]
BOILERPLATE = ["Image of image.", "image of a picture", "Image of photo", "An image of something."]
MIN_GOOD_WORDS = 3


def _good_alt(post) -> AltText | None:
    alts = [a for a in post.alt_texts.all() if len(a.text.split()) >= MIN_GOOD_WORDS]
    for origin in GOOD_ORIGINS:
        for alt in alts:
            if alt.origin == origin:
                return alt
    return None


def _bad_text(kind: str, *, post, good: AltText, others: list[AltText], rng) -> str | None:
    if kind == GoldKind.OTHER_POST:
        candidates = [
            a
            for a in others
            if a.post.image_id != post.image_id and a.text.strip() != good.text.strip()
        ]
        return rng.choice(candidates).text if candidates else None
    if kind == GoldKind.FILENAME:
        name = PurePosixPath(post.image.file.name or "").name
        return name or f"IMG_{post.pk:05d}.jpg"
    if kind == GoldKind.BOILERPLATE:
        return rng.choice(BOILERPLATE)
    if kind == GoldKind.POST_TEXT:
        text = post.context.strip()
        return text if text and text != good.text.strip() else None
    return None


def gold_items_create(*, project: Project, limit: int = 50, seed: int = 0) -> list[GoldItem]:
    """Make up to `limit` known-answer pairs from the project's posts (one per post).

    Each pits a post's good alt-text against a known-bad one (another post's alt-text, a file
    name, a boilerplate "image of …", or the post text copied); the good side is placed at A
    or B at random so position says nothing. Posts that already have a gold pair are skipped,
    so running it again only adds new ones.
    """
    if not 1 <= limit <= 10_000:
        raise ApplicationError("The number of gold items must be between 1 and 10000.")
    rng = random.Random(seed)
    posts = list(
        project.posts.exclude(pairs__source=PairSource.GOLD)
        .select_related("image")
        .prefetch_related("alt_texts")
        .order_by("id")
    )
    goods = {p.pk: _good_alt(p) for p in posts}
    others = [g for g in goods.values() if g is not None]
    for g in others:
        g.post = next(p for p in posts if p.pk == g.post_id)
    kinds = list(GoldKind.values)
    facet_keys = list(
        project.facets.filter(is_active=True, role__in=GOLD_FACET_ROLES).values_list(
            "key", flat=True
        )
    )
    if not facet_keys:
        raise ApplicationError(
            'Gold items need an active facet with the "overall" or "image" role to score raters on.'
        )
    created: list[GoldItem] = []
    for index, post in enumerate(posts):
        if len(created) >= limit:
            break
        good = goods[post.pk]
        if good is None:
            continue
        for shift in range(len(kinds)):
            kind = kinds[(index + shift) % len(kinds)]
            bad_text = _bad_text(kind, post=post, good=good, others=others, rng=rng)
            if bad_text:
                break
        else:
            continue
        with transaction.atomic():
            bad, _ = AltText.objects.get_or_create(
                post=post,
                origin=AltTextOrigin.IMPORTED_REJECTED,
                text_sha256=hashlib.sha256(bad_text.encode("utf-8")).hexdigest(),
                defaults={"text": bad_text},
            )
            good_first = rng.random() < 0.5
            a, b = (good, bad) if good_first else (bad, good)
            if CandidatePair.objects.filter(alt_a__in=[a, b], alt_b__in=[a, b]).exists():
                continue
            pair = CandidatePair.objects.create(
                post=post,
                alt_a=a,
                alt_b=b,
                source=PairSource.GOLD,
                known_preference=Side.A if good_first else Side.B,
            )
            created.append(GoldItem.objects.create(pair=pair, kind=kind, facet_keys=facet_keys))
    return created


def gold_accuracy_refresh(
    *, project: Project, user_id: int | None = None, llm_id: int | None = None
) -> None:
    """Recount gold answers and correct ones (for one rater, or all raters of the project)."""
    qs = Judgement.objects.filter(
        pair__post__project=project,
        pair__gold__isnull=False,
        kind__in=[JudgementKind.HUMAN, JudgementKind.LLM],
    ).values_list(
        "rater_user_id",
        "rater_llm_id",
        "choice",
        "pair__known_preference",
        "facet__key",
        "pair__gold__facet_keys",
    )
    if user_id is not None:
        qs = qs.filter(rater_user_id=user_id)
    if llm_id is not None:
        qs = qs.filter(rater_llm_id=llm_id)
    tally: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for user, llm, choice, known, facet_key, facet_keys in qs:
        if facet_key not in (facet_keys or []):
            continue
        key = ("llm", llm) if llm else ("user", user)
        tally[key][0] += 1
        tally[key][1] += int(choice == known)
    if user_id is not None:
        tally.setdefault(("user", user_id), [0, 0])
    if llm_id is not None:
        tally.setdefault(("llm", llm_id), [0, 0])
    for (kind, rater_id), (answers, correct) in tally.items():
        rel = _reliability_row(project=project, kind=kind, rater_id=rater_id)
        if (rel.gold_answers, rel.gold_correct) != (answers, correct):
            rel.gold_answers, rel.gold_correct = answers, correct
            rel.save(update_fields=["gold_answers", "gold_correct", "updated_at"])
