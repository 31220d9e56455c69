"""The quality gate (modeltrain.quality) on real outputs: the tiny model's loops, empty and
over-long texts, copies of the post, duplicates of an existing alt-text — and the plain
alt-texts it must let through."""

import pytest

from modeltrain import quality

POST = "Our bake sale is today! Come to the school hall at 3pm, everything is homemade."

# What the untrained tiny model wrote in a `make run` demo round (issue 18), and other loops.
LOOPS = [
    "an off - white an off - white an off - white an off - white an off - white an off",
    "an off - white an off - white an off - white",
    "red red red red",
    "A blue square. A blue square. A blue square. A blue square.",
    "the the the",
    "a photo of a cat on a mat with a cat on a mat with a cat on a mat with a hat",
]
GOOD = [
    "A red circle logo above the words Bake Sale.",
    "A small green triangle in the top left corner of a white square.",
    "Three blue squares in a row on a grey background.",
    "Chart: sales rose from 10 to 40 between 2020 and 2023.",
    "A dog, a cat and a rabbit sitting on a sofa.",
]


@pytest.mark.parametrize("text", LOOPS)
def test_loops_are_held_back(text):
    assert quality.check(text, post_text=POST).reason == quality.REPETITION


@pytest.mark.parametrize("text", GOOD)
def test_plain_alt_text_passes(text):
    verdict = quality.check(text, post_text=POST, existing=["A cake on a table."])
    assert verdict.ok and verdict.reason == "" and verdict.label == ""


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "...", " - - ", "!?"])
def test_empty_outputs_are_held_back(text):
    assert quality.check(text).reason == quality.EMPTY


def test_over_long_outputs_are_held_back():
    long = " ".join(f"word{i}" for i in range(120))  # no loop, just long
    assert len(long) > quality.DEFAULT_MAX_CHARS
    assert quality.check(long).reason == quality.TOO_LONG
    assert quality.check("A red circle.", max_chars=5).reason == quality.TOO_LONG
    assert quality.check(long, max_chars=len(long)).ok


@pytest.mark.parametrize(
    "text",
    [
        POST,
        POST.upper(),
        "our bake sale is today come to the school hall at 3pm everything is homemade",
        "Come to the school hall at 3pm, everything is homemade",  # a stretch of it
    ],
)
def test_copies_of_the_post_are_held_back(text):
    assert quality.check(text, post_text=POST).reason == quality.COPIES_POST


def test_a_description_sharing_a_few_words_with_the_post_is_not_a_copy():
    assert quality.check("A poster for the bake sale in the school hall.", post_text=POST).ok
    assert quality.check("bake sale", post_text=POST).ok  # too short to call it a copy
    assert quality.check("Bake sale today", post_text="Bake sale today").reason == (
        quality.COPIES_POST  # the whole post, however short
    )


def test_an_existing_alt_text_is_a_duplicate_after_normalising():
    existing = ["A red circle logo above the words “Bake Sale”.", "Something else."]
    text = "a red  circle logo above the words Bake Sale"
    assert quality.check(text, post_text=POST, existing=existing).reason == quality.DUPLICATE
    assert quality.check(text, post_text=POST, existing=["A blue circle logo."]).ok


def test_every_reason_has_a_label():
    for reason in (
        quality.EMPTY, quality.TOO_LONG, quality.REPETITION, quality.COPIES_POST,
        quality.DUPLICATE, quality.NO_OPPONENT,
    ):  # fmt: skip
        assert quality.REASONS[reason]
    assert quality.check("", post_text=POST).label.startswith("Empty")
