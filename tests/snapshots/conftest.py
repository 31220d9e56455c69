"""A small labelled project: the four reference sample files plus judged pairs of every kind."""

import hashlib
from dataclasses import dataclass

import pytest


def _alt(post, text, origin, parent=None):
    from annotate.models import AltText

    return AltText.objects.create(
        post=post,
        text=text,
        text_sha256=hashlib.sha256(text.encode()).hexdigest(),
        origin=origin,
        parent=parent,
    )


@dataclass
class Labelled:
    project: object
    admin: object
    annotator: object
    reviewer: object
    pairs: dict  # name -> CandidatePair


@pytest.fixture
def labelled(project, member, sample_files):
    from annotate.models import Split
    from preferences.consensus.services import consensus_refresh
    from preferences.imports import altdata_import
    from preferences.marks import pairs_mark_changed
    from preferences.models import CandidatePair, Judgement, LLMLabeler

    for path, images in sample_files:
        report = altdata_import(paths=[path], project=project, images_dir=images)
        assert report.rejected == 0, report.errors
    admin = member("boss", "admin")
    raters = [member(f"rater{i}", "annotator") for i in range(3)]
    reviewer = member("rev", "reviewer")
    llm = LLMLabeler.objects.create(model_id="gemini-test", prompt_version="v1")
    facets = {f.key: f for f in project.facets.all()}
    posts = list(project.posts.filter(split=Split.TRAIN).order_by("id"))

    def judged(post, name, votes, llm_votes=(), adjudication=None, facet="overall"):
        a = _alt(post, f"model says {name} A", "model")
        b = _alt(post, f"model says {name} B", "model")
        pair = CandidatePair.objects.create(post=post, alt_a=a, alt_b=b, source="model")
        for rater, choice in zip(raters, votes, strict=False):
            Judgement.objects.create(
                pair=pair, facet=facets[facet], kind="human", rater_user=rater, choice=choice
            )
        for choice in llm_votes:
            Judgement.objects.create(
                pair=pair, facet=facets[facet], kind="llm", rater_llm=llm, choice=choice
            )
        if adjudication:
            Judgement.objects.create(
                pair=pair,
                facet=facets[facet],
                kind="adjudication",
                rater_user=reviewer,
                choice=adjudication,
            )
        return pair

    pairs = {
        "majority_a": judged(posts[0], "majority", ["A", "A", "B"], llm_votes=["A"]),
        "tie": judged(posts[1], "tie", ["tie", "tie"]),
        "both_bad": judged(posts[2], "bothbad", ["both-bad"]),
        "split": judged(posts[3], "split", ["A", "B"]),
        "llm_only": judged(posts[4], "llmonly", [], llm_votes=["B"]),
        "adjudicated_b": judged(posts[5], "adjudicated", ["A", "B"], adjudication="B"),
    }
    # A rater's correction of the user-written/imported text: edited preferred over original.
    original = posts[6].alt_texts.filter(origin="imported-chosen").first()
    fixed = _alt(posts[6], original.text + " (fixed)", "human-corrected", parent=original)
    pairs["correction"] = CandidatePair.objects.create(
        post=posts[6], alt_a=fixed, alt_b=original, source="correction", known_preference="A"
    )
    # Written row by row above, so marked here as the judgement services mark their pairs and
    # refreshed as the task queued after their commit would.
    pairs_mark_changed(project_id=project.pk, pair_ids=[p.pk for p in pairs.values()])
    consensus_refresh(project_id=project.pk)
    return Labelled(
        project=project, admin=admin, annotator=raters[0], reviewer=reviewer, pairs=pairs
    )


@pytest.fixture
def export(tmp_path):
    """Export helper: returns (folder, manifest)."""
    from snapshots.services import snapshot_export, snapshot_filters_build

    counter = iter(range(1000))

    def run(kind="palt", formats=("mcmdpo",), **filters):
        out = tmp_path / f"export-{next(counter)}"
        built = snapshot_filters_build(kind=kind, **filters)
        manifest = snapshot_export(kind=kind, filters=built, formats=list(formats), out_dir=out)
        return out, manifest

    return run
