"""core.db.model_row: model instances for raw-SQL rows without Model.__init__, as the rating
pages build them; they must behave like instances the ORM loads."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotate.models import Post, Project
from core.db import model_row
from preferences.models import CandidatePair, Judgement

pytestmark = pytest.mark.django_db


def test_a_row_is_a_saved_instance_with_related_objects_cached(pair):
    post = model_row(Post, id=pair.post_id, project_id=pair.post.project_id, context="hi")
    built = model_row(CandidatePair, id=pair.id, post=post, source=pair.source)
    assert not built._state.adding and built._state.db == "default"
    with CaptureQueriesContext(connection) as queries:
        assert built.post is post and built.post_id == pair.post_id
        assert built.post.context == "hi"
        assert built.known_preference is None  # not given: the field's default
    assert len(queries) == 0
    assert built == pair and built.pk == pair.pk
    assert built.get_deferred_fields() == set()


def test_defaults_are_those_init_gives(project):
    built = model_row(Project, id=project.id, name=project.name)
    made = Project(id=project.id, name=project.name)
    for field in Project._meta.concrete_fields:
        assert getattr(built, field.attname) == getattr(made, field.attname), field.name
    # A callable default (Post.provenance: dict) is called for each instance, never shared.
    a, b = model_row(Post, id=1), model_row(Post, id=2)
    assert a.provenance == {} and a.provenance is not b.provenance


def test_a_new_row_saves_like_one_made_by_init(pair, project):
    user = get_user_model().objects.create_user("r1")
    facet = project.facets.first()
    new = model_row(
        Judgement,
        _adding=True,
        pair_id=pair.id,
        facet_id=facet.id,
        kind="human",
        rater_user_id=user.id,
        choice="A",
        shown_order="AB",
    )
    assert new._state.adding and new.pk is None
    Judgement.objects.bulk_create([new])
    stored = Judgement.objects.get(pair=pair, facet=facet)
    assert (stored.choice, stored.rater_user_id, stored.created_at is not None) == (
        "A",
        user.id,
        True,
    )


def test_none_for_a_relation_clears_its_id(pair):
    built = model_row(Judgement, id=5, rater_user=None, pair=pair)
    assert built.rater_user_id is None and built.rater_user is None
    assert built.pair_id == pair.id
