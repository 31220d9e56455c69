"""The alt-text scorer agrees with the MCM-DPO repository's get_score.py on a hand-made set.

The expected numbers below were computed once by running the reference repository's own
`one_file` (get_score.py) and `CiderScorer` (cider.py) on HANDMADE, with nltk 3.10.4, punkt_tab
English and WordNet 3.0 in an nltk_data folder, rouge 1.0.1 and editdistance 0.8.1. They are
recorded here, not recomputed: the reference code is not part of this repository.
"""

import json

import pytest
from django.core.management import CommandError, call_command

from modeltrain import scoring

HANDMADE = [
    {"idx": 0, "chosen": "A red circle on a white background.", "response": "A red circle on a white background."},
    {"idx": 1, "chosen": "A dog runs along the beach at sunset.", "response": "Assistant: A puppy is running on the shore at dusk."},
    {"idx": 2, "chosen": "Two people shaking hands in an office.", "response": ""},
    {"idx": 3, "chosen": 'Dr. Smith holds a sign. It reads "Vote today!" in big letters.', "response": "Assistant:Dr. Smith is holding a sign that says vote today."},
    {"idx": 4, "chosen": "A bar chart of U.S. sales, 2019-2023, rising each year.", "response": "A chart showing sales in the U.S. rising from 2019 to 2023."},
    {"idx": 5, "chosen": "A Blue Square", "response": "a blue square"},
    {"idx": 6, "chosen": "Screenshot of a tweet.", "response": "."},
    {"idx": 7, "chosen": "A cat sleeping on a keyboard.", "response": "A cat is sleeping on a laptop keyboard while a person tries to work, and the screen shows a half-written email about deadlines."},
    {"idx": 8, "chosen": "Green triangle and yellow star.", "response": "Yellow star, green triangle."},
    {"idx": 9, "chosen": "Caf\u00e9 menu board listing coffee prices \u2615", "response": "A menu at a caf\u00e9 with the prices of coffees."},
]  # fmt: skip

# get_score.one_file's summary for HANDMADE (its "file" key dropped).
REFERENCE_SUMMARY = {
    "bleu_4": 10.0,
    "METEOR": 49.419999999999995,
    "ROUGE-L": 30.352,
    "CIDEr": 128.551,
    "bleu_1": 31.578,
    "cumulative_bleu_4": 10.0,
    "edit_distance": 7.5,
    "sample_count": 10,
}
# Per item, as one_file wrote them to its *_score file (rouge None: rouge refused, nothing added),
# CiderScorer.compute_score()'s per-item array, and editdistance over the word_tokenize tokens.
REFERENCE_ITEMS = {
    # idx: (bleu_1, bleu_4, meteor, rouge, cider, edit distance)
    0: (1.0, 1.0, 0.9990234375, 0.999999995, 10.000000000000002, 0),
    1: (0.4, 2.2250738585072626e-308, 0.5616605616605616, 0.35294117148788934, 0.7031207459716469, 6),
    2: (0, 0, 0.0, 0, 0.0, 8),
    3: (0.3161336066098961, 1.289604477082714e-308, 0.5017314062029509, 0.36363635867768596, 0.7545913384413628, 12),
    4: (0.46153846153846156, 2.2250738585072626e-308, 0.23076923076923078, 0.4166666617013889, 0.7672010853295299, 10),
    5: (0, 0, 0.9814814814814815, 0.0, 0.0, 3),
    6: (0.01831563888873418, 4.07536492931814e-310, 0.10869565217391304, None, 0.0, 4),
    7: (0.28, 2.2250738585072626e-308, 0.5449907235621522, 0.4444444409876544, 0.030666254575257113, 18),
    8: (0.5, 2.2250738585072626e-308, 0.7433333333333335, 0.22222221728395072, 0.0, 5),
    9: (0.18181818181818182, 2.2250738585072626e-308, 0.2702702702702703, 0.23529411280276827, 0.599560313961113, 9),
}  # fmt: skip


@pytest.fixture
def handmade_file(tmp_path):
    path = tmp_path / "handmade.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in HANDMADE))
    return path


def test_summary_matches_the_reference_scorer(handmade_file):
    report = scoring.score_file(handmade_file)
    assert report.summary == REFERENCE_SUMMARY


def test_items_match_the_reference_scorer(handmade_file):
    report = scoring.score_file(handmade_file)
    for item in report.items:
        bleu_1, bleu_4, meteor, rouge, cider, edits = REFERENCE_ITEMS[item["idx"]]
        got = (item["bleu_1"], item["bleu_4"], item["meteor"], item["cider"])
        assert got == pytest.approx((bleu_1, bleu_4, meteor, cider), rel=1e-12, abs=0)
        assert item["rouge"] == (None if rouge is None else pytest.approx(rouge, rel=1e-12))
        assert item["edit_distance"] == edits
    assert report.items[1]["response"].startswith("A puppy")  # "Assistant:" stripped


def test_word_tokenize_splits_sentences_with_punkt():
    # Treebank alone would keep "sign." together; Punkt ends the sentence there, "Dr." stays.
    tokens = scoring.word_tokenize('Dr. Smith holds a sign. It reads "Vote today!" in big letters.')
    assert tokens == [
        "Dr.", "Smith", "holds", "a", "sign", ".", "It", "reads", "``", "Vote", "today", "!",
        "''", "in", "big", "letters", ".",
    ]  # fmt: skip
    assert scoring.word_tokenize("A bar chart of U.S. sales.")[4] == "U.S."


def test_cider_uses_the_evaluated_references_for_document_frequency():
    mean, items = scoring.cider_d(
        ["a red circle", "a blue square"], ["a red circle", "a red square"]
    )
    # "a" and "red" occur in both references (idf 0): only the rarer n-grams count
    assert items[0] > items[1] > 0 and mean == pytest.approx(sum(items) / 2)


def test_bad_input_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"idx": 0, "chosen": "a", "response": "b"}\n{not json\n')
    with pytest.raises(scoring.ScoreInputError, match="line 2: not valid JSON"):
        scoring.score_file(bad)
    bad.write_text('{"idx": 0, "chosen": "a"}\n')
    with pytest.raises(scoring.ScoreInputError, match="'response' must be a string"):
        scoring.score_file(bad)
    bad.write_text("\n\n")
    with pytest.raises(scoring.ScoreInputError, match="no records"):
        scoring.score_file(bad)
    with pytest.raises(scoring.ScoreInputError, match="no such file"):
        scoring.score_file(tmp_path / "missing.jsonl")


def test_missing_wordnet_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("ALTPREF_WORDNET_DIR", str(tmp_path))
    with pytest.raises(scoring.ScorerDataMissing, match="wordnet-base"):
        scoring.check_data()


def test_score_alttext_command_prints_exactly_the_reference_keys(handmade_file, capsys):
    call_command("score_alttext", str(handmade_file), "--json")
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == list(scoring.SUMMARY_KEYS)
    assert printed == REFERENCE_SUMMARY

    with pytest.raises(CommandError, match="no such file"):
        call_command("score_alttext", str(handmade_file) + ".missing", "--json")
