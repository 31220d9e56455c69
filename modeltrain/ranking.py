"""Human judgement of rounds in numbers (pure functions, no Django): a win rate with its Wilson
interval, and a Bradley–Terry ranking fitted by the minorise–maximise iteration.

A rater's answer on a pair is an outcome for the side it names: a win (1), a loss (0), or, for
"tie" and "both bad", half a win for each side — neither text was preferred.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

Z95 = 1.959963984540054  # two-sided 95% normal quantile


@dataclass(frozen=True)
class WinRate:
    wins: float  # ties count half
    n: int  # judgements
    rate: float | None
    low: float | None  # Wilson 95% interval
    high: float | None


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion. With ties counted as half a success the count is
    not binomial any more; the interval is then slightly conservative (ties lower the variance),
    which is the side to err on when telling an admin a round is better."""
    if n <= 0:
        raise ValueError("no judgements")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def win_rate(outcomes: Iterable[float]) -> WinRate:
    """outcomes: 1 win, 0 loss, 0.5 tie."""
    values = list(outcomes)
    n = len(values)
    if not n:
        return WinRate(0.0, 0, None, None, None)
    wins = float(sum(values))
    low, high = wilson(wins, n)
    return WinRate(wins, n, wins / n, low, high)


@dataclass(frozen=True)
class Ranked:
    player: Hashable
    strength: float  # log-strength; differences are log-odds of winning
    wins: float
    games: int


def bradley_terry(
    games: Iterable[tuple[Hashable, Hashable, float]],
    *,
    prior: float = 0.5,
    tol: float = 1e-10,
    max_iter: int = 10_000,
) -> list[Ranked]:
    """Bradley–Terry strengths from (player, opponent, score of player) games, best first.

    P(i beats j) = p_i / (p_i + p_j). Fitted by Hunter's (2004) MM update
        p_i ← W_i / Σ_j n_ij / (p_i + p_j)
    A tie adds half a win to each side. `prior` adds that many wins and losses of every
    player against a fixed virtual player of strength 1, so that a player who won (or lost)
    every game gets a finite strength and the scale is pinned (log-strength 0 = that virtual
    average player). prior=0 is the plain maximum-likelihood fit, which then needs a connected
    comparison graph in which every player has won and lost something.
    """
    wins: dict = {}
    pair_games: dict = {}
    index: dict = {}

    def add(p):
        if p not in index:
            wins[p] = 0.0
            index[p] = len(index)

    for a, b, score in games:
        if a == b:
            continue
        add(a)
        add(b)
        wins[a] += score
        wins[b] += 1.0 - score
        key = (a, b) if index[a] < index[b] else (b, a)
        pair_games[key] = pair_games.get(key, 0) + 1
    if not index:
        return []
    players = list(index)
    n = len(players)
    count = [[0] * n for _ in range(n)]
    for (a, b), k in pair_games.items():
        count[index[a]][index[b]] += k
        count[index[b]][index[a]] += k
    strength = [1.0] * n
    for _ in range(max_iter):
        new = []
        for i in range(n):
            denominator = sum(
                count[i][j] / (strength[i] + strength[j]) for j in range(n) if count[i][j]
            )
            numerator = wins[players[i]] + prior
            denominator += 2 * prior / (strength[i] + 1.0)
            new.append(numerator / denominator if denominator else strength[i])
        if not prior:  # no anchor: pin the geometric mean to 1
            mean = math.exp(sum(_log(s) for s in new) / n)
            new = [s / mean for s in new]
        done = max(abs(_log(a) - _log(b)) for a, b in zip(new, strength, strict=True))
        strength = new
        if done < tol:
            break
    games_of = [sum(row) for row in count]
    ranked = [Ranked(p, _log(strength[i]), wins[p], games_of[i]) for i, p in enumerate(players)]
    return sorted(ranked, key=lambda r: -r.strength)


def _log(x: float) -> float:
    # A player who never won drifts towards 0 without a prior; keep its log finite.
    return math.log(max(x, 1e-300))
