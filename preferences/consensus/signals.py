"""Keep consensus and gold accuracy current when a judgement is saved or deleted one by one
(the API, the labelers, undo). The rating screen's batch writes mark their pair pending
instead (preferences.queue.assignment_submit), drained by consensus_drain.

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


@receiver(post_save, sender=Judgement, dispatch_uid="consensus_on_judgement_save")
def judgement_saved(sender, instance: Judgement, raw: bool = False, **kwargs) -> None:
    if not raw:  # fixtures (loaddata) carry no meaning for blending
        _schedule(instance)


@receiver(post_delete, sender=Judgement, dispatch_uid="consensus_on_judgement_delete")
def judgement_deleted(sender, instance: Judgement, **kwargs) -> None:
    _schedule(instance)
