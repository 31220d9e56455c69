"""modeltrain.ranking against known answers: Wilson intervals from the literature and the
Bradley–Terry fit against the likelihood it maximises."""

import math

import pytest

from modeltrain.ranking import bradley_terry, wilson, win_rate


def test_wilson_matches_published_values():
    # 8 of 10 and 0 of 10 at 95%: Newcombe (1998), Table I.
    low, high = wilson(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    low, high = wilson(0, 10)
    assert (round(low, 4), round(high, 4)) == (0.0, 0.2775)
    with pytest.raises(ValueError):
        wilson(0, 0)


def test_win_rate_counts_ties_half():
    rate = win_rate([1, 1, 0.5, 0])
    assert (rate.wins, rate.n, rate.rate) == (2.5, 4, 0.625)
    assert (rate.low, rate.high) == wilson(2.5, 4)
    assert win_rate([]).rate is None and win_rate([]).n == 0


def test_two_players_without_prior_give_the_win_ratio():
    games = [("a", "b", 1.0)] * 3 + [("a", "b", 0.0)]
    ranked = bradley_terry(games, prior=0)
    assert [r.player for r in ranked] == ["a", "b"]
    assert ranked[0].strength - ranked[1].strength == pytest.approx(math.log(3), abs=1e-8)
    assert (ranked[0].wins, ranked[0].games) == (3.0, 4)


def _log_likelihood(strength, games):
    return sum(
        s * (strength[a] - strength[b]) - math.log1p(math.exp(strength[a] - strength[b]))
        for a, b, s in games
    )


def test_the_fit_is_the_maximum_likelihood():
    games = (
        [("r1", "ex", 1.0)] * 5 + [("r1", "ex", 0.0)] * 2 + [("r1", "ex", 0.5)]
        + [("r2", "ex", 1.0)] * 1 + [("r2", "ex", 0.0)] * 6
        + [("ex", "base", 1.0)] * 3 + [("ex", "base", 0.0)] * 2 + [("r1", "r2", 1.0)] * 2
        + [("r1", "r2", 0.0)]
    )  # fmt: skip
    ranked = bradley_terry(games, prior=0)
    strength = {r.player: r.strength for r in ranked}
    assert [r.player for r in ranked] == ["r1", "ex", "base", "r2"]
    assert sum(strength.values()) == pytest.approx(0.0, abs=1e-9)  # geometric mean pinned
    best = _log_likelihood(strength, games)
    for player in strength:  # any small move lowers the likelihood
        for delta in (-1e-3, 1e-3):
            moved = {**strength, player: strength[player] + delta}
            assert _log_likelihood(moved, games) < best


def test_the_prior_keeps_an_unbeaten_player_finite_and_ordered():
    games = [("a", "b", 1.0)] * 4 + [("b", "c", 1.0)] * 4
    ranked = bradley_terry(games)
    assert [r.player for r in ranked] == ["a", "b", "c"]
    assert all(math.isfinite(r.strength) for r in ranked)
    assert ranked[1].strength == pytest.approx(0.0, abs=1e-6)  # symmetric: b is average
    assert bradley_terry([]) == []
