"""Integrity lives in the database: constraints refuse what the services would never write."""

import pytest
from django.db import IntegrityError, transaction

from annotate.models import AltText, Image, Membership, Post
from preferences.models import CandidatePair, Facet, Judgement, LLMLabeler

pytestmark = pytest.mark.django_db


def _refused(factory):
    with pytest.raises(IntegrityError), transaction.atomic():
        factory()


def test_enum_fields_are_checked_by_the_database(project, post, make_user):
    user = make_user("u")
    _refused(lambda: Membership.objects.create(project=project, user=user, role="owner"))
    _refused(
        lambda: Post.objects.create(
            project=project, platform="myspace", content_key="z", image=post.image
        )
    )
    _refused(
        lambda: Post.objects.create(
            project=project, platform="twitter", split="holdout", content_key="z", image=post.image
        )
    )
    _refused(lambda: AltText.objects.create(post=post, text="x", text_sha256="x", origin="guess"))


def test_image_hash_and_size_are_checked(db):
    _refused(
        lambda: Image.objects.create(
            sha256="not-a-hash", file="f", mime="image/png", width=1, height=1, size_bytes=1
        )
    )
    _refused(
        lambda: Image.objects.create(
            sha256="b" * 64, file="f", mime="image/png", width=0, height=1, size_bytes=1
        )
    )


def test_correction_needs_a_parent_and_imports_are_unique(post):
    _refused(
        lambda: AltText.objects.create(
            post=post, text="x", text_sha256="x", origin="human-corrected"
        )
    )
    AltText.objects.create(post=post, text="x", text_sha256="x", origin="user-written")
    _refused(
        lambda: AltText.objects.create(post=post, text="x", text_sha256="x", origin="user-written")
    )


def test_pair_sides_must_differ_and_pairs_are_unique(pair):
    _refused(
        lambda: CandidatePair.objects.create(
            post=pair.post, alt_a=pair.alt_a, alt_b=pair.alt_a, source="import"
        )
    )
    _refused(
        lambda: CandidatePair.objects.create(
            post=pair.post, alt_a=pair.alt_a, alt_b=pair.alt_b, source="model"
        )
    )
    _refused(
        lambda: CandidatePair.objects.create(
            post=pair.post,
            alt_a=pair.alt_b,
            alt_b=pair.alt_a,
            source="import",
            known_preference="C",
        )
    )


def test_judgement_rater_kind_choice_and_uniqueness(pair, make_user):
    facet = Facet.objects.get(project=pair.post.project, key="overall")
    user = make_user("rater")
    llm = LLMLabeler.objects.create(model_id="gemini-x", prompt_version="v1")
    Judgement.objects.create(pair=pair, facet=facet, kind="human", rater_user=user, choice="A")
    _refused(
        lambda: Judgement.objects.create(
            pair=pair, facet=facet, kind="human", rater_user=user, choice="B"
        )
    )
    _refused(
        lambda: Judgement.objects.create(
            pair=pair, facet=facet, kind="human", rater_user=user, rater_llm=llm, choice="A"
        )
    )
    _refused(
        lambda: Judgement.objects.create(
            pair=pair, facet=facet, kind="llm", rater_user=user, choice="A"
        )
    )
    _refused(lambda: Judgement.objects.create(pair=pair, facet=facet, kind="human", choice="A"))
    _refused(
        lambda: Judgement.objects.create(
            pair=pair, facet=facet, kind="llm", rater_llm=llm, choice="maybe"
        )
    )
    _refused(
        lambda: Judgement.objects.create(
            pair=pair, facet=facet, kind="llm", rater_llm=llm, choice="A", seconds_spent=-1
        )
    )
    # An adjudication by the same user is a different kind of judgement and may coexist.
    Judgement.objects.create(
        pair=pair, facet=facet, kind="adjudication", rater_user=user, choice="B"
    )
    Judgement.objects.create(pair=pair, facet=facet, kind="llm", rater_llm=llm, choice="tie")
    _refused(
        lambda: Judgement.objects.create(
            pair=pair, facet=facet, kind="llm", rater_llm=llm, choice="A"
        )
    )


def test_deleting_a_project_removes_its_material_but_not_shared_images(pair, make_user):
    from annotate.models import Project

    facet = Facet.objects.get(project=pair.post.project, key="overall")
    Judgement.objects.create(
        pair=pair, facet=facet, kind="human", rater_user=make_user("r"), choice="A"
    )
    Project.objects.filter(pk=pair.post.project_id).delete()
    assert Post.objects.count() == AltText.objects.count() == CandidatePair.objects.count() == 0
    assert Judgement.objects.count() == 0
    assert Image.objects.count() == 1


def test_an_alt_text_in_a_pair_cannot_be_deleted_alone(pair):
    from django.db.models import RestrictedError

    with pytest.raises(RestrictedError):
        pair.alt_a.delete()


def test_any_of_lookup_behaves_like_in(post, pair):
    assert list(Post.objects.filter(pk__any_of=[post.pk, 10**9])) == [post]
    assert list(Post.objects.filter(content_key__any_of=["k"])) == [post]
    assert not Post.objects.filter(pk__any_of=[]).exists()
    assert list(CandidatePair.objects.filter(alt_a_id__any_of={pair.alt_a_id})) == [pair]
