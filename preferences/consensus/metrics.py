"""Agreement and reliability math on plain Python data (no Django): percent agreement,
Cohen's κ, Krippendorff's α (nominal) and a Dawid–Skene EM estimate.

Labels are any hashable values; Dawid–Skene works on indices 0..K-1.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from itertools import combinations

import numpy as np


def percent_agreement(units: Iterable[Sequence[Hashable]]) -> tuple[float | None, int]:
    """Share of agreeing rater pairs over all units with ≥2 labels; returns (share, pairs)."""
    agree = total = 0
    for labels in units:
        for a, b in combinations(labels, 2):
            total += 1
            agree += a == b
    return (agree / total if total else None), total


def cohen_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> float | None:
    """κ = (p_o − p_e) / (1 − p_e) for two raters' labels on the same items.

    None when undefined: no items, or both raters used one and the same label throughout.
    """
    n = len(pairs)
    if not n:
        return None
    p_o = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    p_e = sum(first[c] * second[c] for c in first) / (n * n)
    if p_e >= 1.0:
        return None
    return (p_o - p_e) / (1 - p_e)


def krippendorff_alpha_nominal(units: Iterable[Sequence[Hashable]]) -> float | None:
    """Krippendorff's α for nominal data from per-unit label lists (missing = absent).

    Units with fewer than two labels are not pairable and are ignored. None when undefined
    (fewer than two pairable values, or every value is the same category).
    """
    coincidence: Counter = Counter()
    for labels in units:
        m = len(labels)
        if m < 2:
            continue
        for i, a in enumerate(labels):
            for j, b in enumerate(labels):
                if i != j:
                    coincidence[(a, b)] += 1.0 / (m - 1)
    n_c: Counter = Counter()
    for (a, _b), value in coincidence.items():
        n_c[a] += value
    n = sum(n_c.values())
    if n <= 1:
        return None
    observed = sum(v for (a, b), v in coincidence.items() if a != b)
    expected = sum(n_c[a] * n_c[b] for a in n_c for b in n_c if a != b)
    if expected == 0:
        return None
    return 1.0 - (n - 1) * observed / expected


def dawid_skene(
    observations: Sequence[tuple[int, int, int]],
    *,
    n_items: int,
    n_raters: int,
    n_labels: int,
    fixed: dict[int, int] | None = None,
    max_iter: int = 100,
    tol: float = 1e-6,
    diag_prior: float = 2.0,
    off_prior: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dawid & Skene (1979) EM: (item posteriors T, class prior, confusion[rater, true, given]).

    `observations` are (item, rater, label) triples. `fixed` pins items whose true label is
    known (adjudications, gold answers). Dirichlet pseudo-counts (diag_prior on the diagonal,
    off_prior elsewhere) keep sparse raters' matrices sensible instead of 0/1.
    """
    fixed = fixed or {}
    obs = np.asarray(observations, dtype=np.int64).reshape(-1, 3)
    items, raters, labels = obs[:, 0], obs[:, 1], obs[:, 2]

    # Start from the per-item vote shares (majority vote, soft).
    t = np.full((n_items, n_labels), 1e-9)
    np.add.at(t, (items, labels), 1.0)
    for i, k in fixed.items():
        t[i] = 0.0
        t[i, k] = 1.0
    t /= t.sum(axis=1, keepdims=True)

    pseudo = np.full((n_labels, n_labels), off_prior) + np.eye(n_labels) * (diag_prior - off_prior)
    confusion = np.empty((n_raters, n_labels, n_labels))
    prior = np.full(n_labels, 1.0 / n_labels)
    for _ in range(max_iter):
        # M-step
        prior = (t.sum(axis=0) + 1.0) / (n_items + n_labels)
        counts = np.zeros((n_raters, n_labels, n_labels))
        # counts[r, true k, given l] += T[i, k]
        np.add.at(counts, (raters, slice(None), labels), t[items])
        confusion = counts + pseudo
        confusion /= confusion.sum(axis=2, keepdims=True)
        # E-step
        log_t = np.tile(np.log(prior), (n_items, 1))
        np.add.at(log_t, items, np.log(confusion[raters, :, labels]))
        log_t -= log_t.max(axis=1, keepdims=True)
        new_t = np.exp(log_t)
        new_t /= new_t.sum(axis=1, keepdims=True)
        for i, k in fixed.items():
            new_t[i] = 0.0
            new_t[i, k] = 1.0
        delta = float(np.abs(new_t - t).max()) if n_items else 0.0
        t = new_t
        if delta < tol:
            break
    return t, prior, confusion


def posterior_for_item(votes: Sequence[tuple[np.ndarray, int]], prior: np.ndarray) -> np.ndarray:
    """P(true label) for one item from (rater confusion matrix, given label) votes."""
    log_p = np.log(np.asarray(prior, dtype=float))
    for confusion, label in votes:
        log_p = log_p + np.log(np.asarray(confusion, dtype=float)[:, label])
    log_p -= log_p.max()
    p = np.exp(log_p)
    return p / p.sum()
