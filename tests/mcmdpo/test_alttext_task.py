"""The controlled alt-text task: deterministic, image and context both decide the answer, held-out
combinations in test only, rejected alternatives of the kinds people write, readable by the trainer."""

import hashlib
import random

import pytest

from modeltrain.mcmdpo import alttext_task as task
from modeltrain.mcmdpo.demo_model import knows_all_words
from modeltrain.mcmdpo.formats import read_records


def _digest(folder):
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a = task.write_task(tmp_path / "a", seed=3, talt=24, palt=12, test=8)
    b = task.write_task(tmp_path / "b", seed=3, talt=24, palt=12, test=8)
    c = task.write_task(tmp_path / "c", seed=4, talt=24, palt=12, test=8)
    assert _digest(a.root) == _digest(b.root)
    assert _digest(a.root) != _digest(c.root)


def test_splits_read_as_talt_palt_and_test_records(tmp_path):
    paths = task.write_task(tmp_path, seed=0, talt=30, palt=20, test=10)
    talt = read_records(paths.talt, require_rejected=False)
    palt = read_records(paths.palt)
    test = read_records(paths.test)
    assert (len(talt), len(palt), len(test)) == (30, 20, 10)
    assert all(r.rejected is None for r in talt)
    assert all(r.rejected and r.rejected != r.chosen for r in palt + test)
    # Pictures are shared between posts, as on real platforms.
    assert len({r.image_path for r in talt}) < len(talt)
    # TAlt and PAlt share no picture.
    assert not {r.image_path for r in talt} & {r.image_path for r in palt}
    # The tokenizer of the demo model knows every word the task writes.
    texts = [t for r in talt + palt + test for t in (r.context, r.chosen, r.rejected or "")]
    assert knows_all_words(texts)


def test_held_out_pairs_never_in_training_and_every_test_post_needs_one():
    train = task.sample_posts(400, seed=0, held_out=False)
    test = task.sample_posts(100, seed=0, held_out=True)
    assert not any(p.scene.pairs() & task.HELD_OUT for p in train)
    for post in test:
        if post.target == "sign":
            assert post.scene.pairs() & task.HELD_OUT
        else:
            group = post.scene.group(post.target)
            assert (group.colour, group.shape) in task.HELD_OUT
    # Composition: every colour and every shape is still seen in training.
    seen = set().union(*(p.scene.pairs() for p in train))
    assert {c for c, _ in seen} == set(task.COLOURS)
    assert {s for _, s in seen} == set(task.SHAPES)


def test_the_answer_depends_on_the_context_and_on_the_image():
    scene = task.Scene("SALE", task.Group("red", "circle", 2), task.Group("blue", "square", 1))
    left, right, sign = (task.alt_text(scene, t) for t in ("left", "right", "sign"))
    assert left == "two red circles on the left next to one blue square"
    assert right == "one blue square on the right next to two red circles"
    assert sign == "a sign that says SALE above two red circles and one blue square"
    other = task.Scene("STOP", task.Group("green", "circle", 3), task.Group("blue", "square", 1))
    assert task.alt_text(other, "left") != left
    posts = task.sample_posts(60, seed=1, held_out=False)
    for post in posts:
        if post.target != "sign":
            assert post.target in post.context  # the post says which side it is about
        else:
            assert "sign" in post.context


def test_rejected_alternatives_are_the_kinds_people_write():
    scene = task.Scene("OPEN", task.Group("red", "circle", 2), task.Group("blue", "square", 1))
    post = task.Post(scene, "left", "Vote for the left design for our music festival club.")
    rng = random.Random(0)
    made = {kind: task.rejected_alt_text(post, kind, rng) for kind in task.REJECTION_KINDS}
    assert made["post_copy"] == post.context
    assert made["image_of"].startswith("image of")
    assert made["file_name"] in task.FILE_NAMES
    assert "red" not in made["wrong_colour"].split(" on the")[0]
    assert made["wrong_count"].split()[0] != "two"
    assert made["ignores_context"] != post.chosen and "blue square" in made["ignores_context"]
    assert all(text != post.chosen for text in made.values())
    with pytest.raises(ValueError, match="unknown rejection kind"):
        task.rejected_alt_text(post, "typo", rng)


def test_every_rejection_kind_appears_in_the_preference_split(tmp_path):
    import json

    paths = task.write_task(tmp_path, seed=0, talt=0, palt=24, test=6)
    rows = json.loads((paths.palt / "alttext_palt.json").read_text())
    kinds = {json.loads(row["text"])["rejection_kind"] for row in rows}
    assert kinds == set(task.REJECTION_KINDS)


def test_picture_shows_the_colours_where_the_scene_says():
    scene = task.Scene("LOVE", task.Group("red", "square", 3), task.Group("blue", "square", 3))
    image = task.draw_scene(scene)
    size = image.width
    third = size // 3
    left = image.getpixel((third // 2, third + third))
    right = image.getpixel((size - third // 2, third + third))
    assert left == task.COLOURS["red"] and right == task.COLOURS["blue"]
    # The sign's word is drawn: the top row is not blank.
    top = image.crop((4, 4, size - 4, third - 4))
    assert top.convert("L").getextrema()[0] < 100
