"""Alt-text checks and the word diff behind the correction screen."""

from annotate.checks import alt_text_checks, word_diff


def keys(text, context=""):
    return {f.key for f in alt_text_checks(text=text, context=context) if f.level == "warning"}


def test_each_check_fires_on_its_problem_and_not_on_clean_text():
    assert keys("A red circle on a pale background.") == set()
    assert "opener" in keys("Image of a red circle")
    assert "opener" in keys("a picture of a dog")
    assert "filename" in keys("IMG_2041.JPG")
    assert "filename" in keys("sunset-final.png at the beach")
    assert "url" in keys("see https://example.com/x")
    assert "hashtag" in keys("A dog #caturday")
    assert "caps" in keys("A BIG RED SALE SIGN")
    assert "copy" in keys(
        "Finally finished the logo", context="Finally finished the logo for our bake sale!"
    )
    assert "empty" in keys("   ")


def test_length_reports_characters_and_screen_reader_seconds():
    text = " ".join(["word"] * 27)
    length = next(f for f in alt_text_checks(text=text) if f.key == "length")
    assert f"{len(text)} characters" in length.message
    assert "about 10 s to hear" in length.message
    assert length.level == "info"
    assert next(f for f in alt_text_checks(text="x" * 300) if f.key == "length").level == "warning"


def test_word_diff_marks_removed_and_added_words():
    runs = word_diff(before="image of a red circle", after="A red circle on white")
    assert ("del", "image of a") in runs
    assert ("ins", "A") in runs
    assert ("same", "red circle") in runs
    assert ("ins", "on white") in runs
