"""Agreement math against hand-computed cases and the `krippendorff` package; Dawid–Skene
recovers who is reliable."""

import random

import krippendorff
import numpy as np
import pytest

from preferences.consensus.metrics import (
    cohen_kappa,
    dawid_skene,
    krippendorff_alpha_nominal,
    percent_agreement,
)

LABELS = ["A", "B", "tie", "both-bad"]


def test_cohen_kappa_hand_computed():
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15.
    # p_o = 35/50 = 0.7; p_e = 0.5·0.6 + 0.5·0.4 = 0.5; κ = 0.2 / 0.5 = 0.4.
    pairs = [("A", "A")] * 20 + [("A", "B")] * 5 + [("B", "A")] * 10 + [("B", "B")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)


def test_cohen_kappa_four_categories_hand_computed():
    # p_o = 3/6 = 0.5; LLM marginals A 2, B 2, tie 1, both-bad 1; humans A 3, B 1, tie 2.
    # p_e = (2·3 + 2·1 + 1·2 + 1·0) / 36 = 10/36; κ = (0.5 − 10/36) / (1 − 10/36) = 8/26.
    pairs = [("A", "A"), ("A", "tie"), ("B", "B"), ("B", "A"), ("tie", "tie"), ("both-bad", "A")]
    assert cohen_kappa(pairs) == pytest.approx(8 / 26)


def test_cohen_kappa_edge_cases():
    assert cohen_kappa([]) is None
    assert cohen_kappa([("A", "A")] * 3) is None  # one category only: undefined
    assert cohen_kappa([("A", "B"), ("B", "A")]) == pytest.approx(-1.0)


def test_percent_agreement_counts_rater_pairs():
    # 3 raters: A, A, B -> 1 of 3 pairs agree; 2 raters: tie, tie -> 1 of 1.
    share, pairs = percent_agreement([["A", "A", "B"], ["tie", "tie"], ["B"]])
    assert pairs == 4 and share == pytest.approx(2 / 4)
    assert percent_agreement([["A"]]) == (None, 0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_krippendorff_alpha_matches_the_package(seed):
    rng = random.Random(seed)
    n_raters, n_units = 5, 40
    truth = [rng.choice(LABELS) for _ in range(n_units)]
    matrix = np.full((n_raters, n_units), np.nan)
    units = []
    for u in range(n_units):
        labels = []
        for r in range(n_raters):
            if rng.random() < 0.35:
                continue  # missing: not every rater sees every item
            label = truth[u] if rng.random() < 0.7 else rng.choice(LABELS)
            matrix[r, u] = LABELS.index(label)
            labels.append(label)
        units.append(labels)
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert krippendorff_alpha_nominal(units) == pytest.approx(expected, abs=1e-9)


def test_krippendorff_alpha_hand_computed():
    # Two units, two raters: (A, A) and (A, B). Coincidences: A-A 2, A-B 1, B-A 1; n_A 3, n_B 1,
    # n 4. α = 1 − (n − 1)·D_o / Σ n_c n_k = 1 − 3·2 / (3·1 + 1·3) = 0.
    assert krippendorff_alpha_nominal([["A", "A"], ["A", "B"]]) == pytest.approx(0.0)
    assert krippendorff_alpha_nominal([["A", "A"], ["B", "B"]]) == pytest.approx(1.0)
    assert krippendorff_alpha_nominal([["A", "A"], ["A", "A"]]) is None
    assert krippendorff_alpha_nominal([["A"]]) is None


def test_dawid_skene_finds_the_unreliable_rater():
    rng = np.random.default_rng(0)
    n_items, k = 200, 4
    truth = rng.integers(0, 2, n_items)  # mostly A/B items
    accuracies = [0.9, 0.85, 0.8, 0.25]  # rater 3 is close to random
    observations = []
    for i in range(n_items):
        for r, acc in enumerate(accuracies):
            label = truth[i] if rng.random() < acc else int(rng.integers(0, k))
            observations.append((i, r, int(label)))
    posterior, prior, confusion = dawid_skene(observations, n_items=n_items, n_raters=4, n_labels=k)
    accuracy = [(prior * np.diag(confusion[r])).sum() for r in range(4)]
    assert accuracy[3] < 0.5 < min(accuracy[:3])
    assert (posterior.argmax(axis=1) == truth).mean() > 0.95


def test_dawid_skene_respects_fixed_items():
    observations = [(0, 0, 1), (0, 1, 1), (1, 0, 0)]
    posterior, _, _ = dawid_skene(observations, n_items=2, n_raters=2, n_labels=4, fixed={0: 0})
    assert posterior[0].tolist() == [1.0, 0.0, 0.0, 0.0]
