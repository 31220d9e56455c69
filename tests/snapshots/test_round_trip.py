"""A PAlt snapshot imported into an empty database and exported again gives the same pairs."""

import json


def _wipe_everything():
    from annotate.models import AltText, Image, Post, Project
    from preferences.models import CandidatePair, Judgement

    Judgement.objects.all().delete()
    CandidatePair.objects.all().delete()
    AltText.objects.filter(parent__isnull=False).delete()
    AltText.objects.all().delete()
    Post.objects.all().delete()
    Image.objects.all().delete()
    Project.objects.all().delete()


def test_palt_round_trip(labelled, export, settings, tmp_path):
    import shutil

    from preferences.imports import altdata_import
    from preferences.models import CandidatePair
    from preferences.projects import project_create

    first, manifest = export(project=labelled.project, image_paths="relative")
    assert manifest["counts"]["records"] == 23

    _wipe_everything()
    shutil.rmtree(settings.MEDIA_ROOT)  # the images now exist only inside the snapshot
    fresh = project_create(name="Fresh")
    report = altdata_import(paths=[first / "palt.json"], project=fresh, strict=True)
    assert report.rejected == 0 and report.imported == 23, report.errors
    assert CandidatePair.objects.count() == 23

    second, again = export(project=fresh, image_paths="relative")

    def pairs(folder):
        return [
            (item["image_path"], *json.loads(item["text"]).values())
            for item in json.load((folder / "palt.json").open())
        ]

    assert pairs(second) == pairs(first)
    assert (second / "palt.json").read_bytes() == (first / "palt.json").read_bytes()
    assert again["files"] == manifest["files"]
