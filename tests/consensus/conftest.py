"""Fixtures for blending tests: raters, an LLM labeler, and a helper to record judgements."""

import pytest


@pytest.fixture
def llm(db):
    from preferences.models import LLMLabeler

    return LLMLabeler.objects.create(model_id="gemini-2.5-flash", prompt_version="judge-test")


@pytest.fixture
def overall(project):
    return project.facets.get(key="overall")


@pytest.fixture
def judge():
    """judge(pair, facet, rater, choice, kind=...) records a judgement as its writer does (marking
    the pair), then refreshes consensus as the task queued after the commit would."""
    from preferences.consensus.services import consensus_refresh
    from preferences.labelers.models import LLMVerdict
    from preferences.marks import pairs_mark_changed
    from preferences.models import Judgement, LLMLabeler
    from preferences.services import judgement_record

    def write(pair, facet, rater, choice, kind, flipped):
        if not isinstance(rater, LLMLabeler):
            return judgement_record(pair=pair, facet=facet, user=rater, choice=choice, kind=kind)[0]
        j = Judgement.objects.create(
            pair=pair, facet=facet, kind="llm", rater_llm=rater, choice=choice
        )
        LLMVerdict.objects.create(
            judgement=j,
            facet=facet,
            choice_ab="A" if flipped else choice,
            choice_ba="B" if flipped else choice,
            flipped=flipped,
        )
        # The verdict is saved after the judgement, as in pair_llm_judge's transaction.
        pairs_mark_changed(project_id=facet.project_id, pair_ids=[pair.pk])
        return j

    def record(pair, facet, rater, choice, kind="human", flipped=False):
        j = write(pair, facet, rater, choice, kind, flipped)
        consensus_refresh(project_id=facet.project_id)
        return j

    return record
