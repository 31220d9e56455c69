"""Keep consensus and gold accuracy current when a judgement is saved or deleted.

The update runs after the transaction commits (so concurrent judgements on one item are all
visible to the last update) and never breaks the write that triggered it: a failure is logged
and the next judgement or a refit repairs the row.
"""

import logging

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from preferences.models import Judgement, JudgementKind

logger = logging.getLogger(__name__)


def _refresh(pair_id: int, facet_id: int, kind: str, user_id, llm_id) -> None:
    from preferences.models import CandidatePair, Facet

    from .services import consensus_update_for, gold_accuracy_refresh

    try:
        pair = CandidatePair.objects.select_related("post__project").filter(pk=pair_id).first()
        facet = Facet.objects.select_related("project").filter(pk=facet_id).first()
        if pair is None or facet is None:
            return  # deleted together with its pair or facet
        consensus_update_for(pair=pair, facet=facet)
        if pair.source == "gold" and kind != JudgementKind.ADJUDICATION:
            gold_accuracy_refresh(project=pair.post.project, user_id=user_id, llm_id=llm_id)
    except Exception:
        logger.exception("consensus update failed for pair %s facet %s", pair_id, facet_id)


def _schedule(instance: Judgement) -> None:
    args = (
        instance.pair_id,
        instance.facet_id,
        instance.kind,
        instance.rater_user_id,
        instance.rater_llm_id,
    )
    transaction.on_commit(lambda: _refresh(*args))


def _refresh_pair(
    *,
    pair_id: int,
    project,
    facet_ids: list[int],
    gold: bool,
    user_id,
    policy,
    judgements=None,
    reraise=False,
):
    from .services import consensus_update_for_pair, gold_accuracy_refresh

    try:
        consensus_update_for_pair(
            pair_id=pair_id,
            project_id=project.pk,
            facet_ids=facet_ids,
            policy=policy,
            judgements=judgements,
        )
        if gold:
            gold_accuracy_refresh(project=project, user_id=user_id)
    except Exception:
        if reraise:
            raise
        logger.exception("consensus update failed for pair %s facets %s", pair_id, facet_ids)


def judgements_bulk_created(
    *,
    judgements: list[Judgement],
    pair,
    project,
    policy=None,
    pair_locked: bool = False,
    pair_judgements: list[Judgement] | None = None,
) -> None:
    """The post_save counterpart for one rater's human judgements on one pair written with
    bulk_create (which sends no signals): one batch update of those facets, not one per
    judgement. `policy` is the project's ConsensusPolicy when the caller already has it.

    With `pair_locked` (the caller holds the pair's row lock until it commits, so writers on
    the pair take turns and each sees the answers before it) the update runs now, inside the
    caller's transaction under a savepoint: the answers and their consensus commit together
    in one commit; `pair_judgements` (every judgement of the pair, read under that lock, new
    ones included) then saves reading them again. Otherwise it runs after commit, like the
    per-judgement signal.
    """
    if not judgements:
        return
    kwargs = dict(
        pair_id=pair.pk,
        project=project,
        facet_ids=sorted({j.facet_id for j in judgements}),
        gold=pair.source == "gold",
        user_id=judgements[0].rater_user_id,
        policy=policy,
    )
    if not pair_locked:
        transaction.on_commit(lambda: _refresh_pair(**kwargs))
        return
    try:
        with transaction.atomic():  # a savepoint: a failed update must not undo the answers
            _refresh_pair(**kwargs, judgements=pair_judgements, reraise=True)
    except Exception:
        logger.exception("consensus update failed for pair %s", pair.pk)


@receiver(post_save, sender=Judgement, dispatch_uid="consensus_on_judgement_save")
def judgement_saved(sender, instance: Judgement, raw: bool = False, **kwargs) -> None:
    if not raw:  # fixtures (loaddata) carry no meaning for blending
        _schedule(instance)


@receiver(post_delete, sender=Judgement, dispatch_uid="consensus_on_judgement_delete")
def judgement_deleted(sender, instance: Judgement, **kwargs) -> None:
    _schedule(instance)
