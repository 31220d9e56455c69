"""judgement_record: role checks, validation, idempotent resubmits."""

import pytest

from core.errors import ApplicationError, NotFound, PermissionDenied
from preferences.models import Judgement
from preferences.services import judgement_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def overall(project):
    return project.facets.get(key="overall")


def test_member_records_once_and_resubmit_is_idempotent(pair, overall, member):
    rater = member("ann")
    j1, created1 = judgement_record(
        pair=pair,
        facet=overall,
        user=rater,
        choice="A",
        shown_order="BA",
        seconds_spent=3.5,
        client_key="k1",
    )
    j2, created2 = judgement_record(
        pair=pair, facet=overall, user=rater, choice="A", shown_order="BA", client_key="k1"
    )
    assert created1 and not created2 and j1.pk == j2.pk
    assert Judgement.objects.count() == 1
    assert (j1.shown_order, j1.seconds_spent) == ("BA", 3.5)


def test_changing_an_answer_is_refused_with_409(pair, overall, member):
    rater = member("ann")
    judgement_record(pair=pair, facet=overall, user=rater, choice="A")
    with pytest.raises(ApplicationError) as err:
        judgement_record(pair=pair, facet=overall, user=rater, choice="B")
    assert err.value.status_code == 409


def test_non_member_and_annotator_adjudication_are_refused(pair, overall, member, make_user):
    with pytest.raises(NotFound):
        judgement_record(pair=pair, facet=overall, user=make_user("stranger"), choice="A")
    with pytest.raises(PermissionDenied):
        judgement_record(
            pair=pair, facet=overall, user=member("ann"), choice="A", kind="adjudication"
        )
    _, created = judgement_record(
        pair=pair, facet=overall, user=member("rev", "reviewer"), choice="B", kind="adjudication"
    )
    assert created


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"choice": "C"}, "Unknown choice"),
        ({"choice": "A", "shown_order": "XY"}, "Unknown shown order"),
        ({"choice": "A", "seconds_spent": -2}, "seconds_spent"),
        ({"choice": "A", "rationale": "x" * 6000}, "rationale"),
        ({"choice": "A", "kind": "llm"}, "LLM judgements"),
    ],
)
def test_invalid_input_is_a_clear_error(pair, overall, member, kwargs, message):
    with pytest.raises(ApplicationError, match=message):
        judgement_record(pair=pair, facet=overall, user=member("ann"), **kwargs)
    assert Judgement.objects.count() == 0


def test_facet_from_another_project_is_refused(pair, member):
    from preferences.projects import project_create

    other = project_create(name="Other").facets.get(key="overall")
    with pytest.raises(ApplicationError, match="facet"):
        judgement_record(pair=pair, facet=other, user=member("ann"), choice="A")
