"""Reads: what raters said about the rounds' feedback candidates (modeltrain.feedback).

Each feedback pair is a round's (or its base model's) output against the post's best alt-text
at the time. Every human judgement of such a pair is a game between the players whose outputs
are its sides: a round, a base model, or the post's existing alt-text (written by people or the
data set). From the games: per player and facet the win rate with ties (and "both bad") counted
half and a Wilson 95% interval, and per facet a Bradley–Terry ranking of all players
(modeltrain.ranking).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from preferences.models import Facet, Judgement, JudgementKind

from . import ranking
from .models import RoundOutput

EXISTING = ("existing", "")
# The stored choice as the score of side A.
SCORE_OF_A = {"A": 1.0, "B": 0.0, "tie": 0.5, "both-bad": 0.5}


def player_label(player: tuple) -> str:
    kind, name = player
    if kind == "round":
        return f"Round {name}"
    if kind == "base":
        return f"Base model {name}"
    return "Existing alt-text (people, data set)"


@dataclass(frozen=True)
class Judged:
    facet: str
    side_a: frozenset  # players whose output is side A
    side_b: frozenset
    score_a: float


def _judged(project_id: int) -> list[Judged]:
    outputs = RoundOutput.objects.filter(
        round__project_id=project_id,
        purpose=RoundOutput.Purpose.FEEDBACK,
        pair__isnull=False,
    ).values_list("alt_text_id", "model", "round_id", "round__base_model")
    players_of = defaultdict(set)
    for alt_id, model, round_id, base_model in outputs:
        player = ("round", round_id) if model == "trained" else ("base", base_model)
        players_of[alt_id].add(player)
    judgements = Judgement.objects.filter(
        kind=JudgementKind.HUMAN,
        pair_id__in=RoundOutput.objects.filter(
            round__project_id=project_id, purpose=RoundOutput.Purpose.FEEDBACK
        ).values("pair_id"),
    ).values_list("facet__key", "pair__alt_a_id", "pair__alt_b_id", "choice")
    return [
        Judged(
            facet=facet,
            side_a=frozenset(players_of.get(a) or {EXISTING}),
            side_b=frozenset(players_of.get(b) or {EXISTING}),
            score_a=SCORE_OF_A[choice],
        )
        for facet, a, b, choice in judgements.order_by("id")
    ]


def _outcomes(judged: list[Judged]) -> dict[tuple, dict[str, list[float]]]:
    """player → facet → its side's scores, one per judgement."""
    out: dict = defaultdict(lambda: defaultdict(list))
    for j in judged:
        if j.side_a & j.side_b:
            continue  # the same player on both sides says nothing about it
        for player in j.side_a:
            out[player][j.facet].append(j.score_a)
        for player in j.side_b:
            out[player][j.facet].append(1.0 - j.score_a)
    return out


def _games(judged: list[Judged], facet: str):
    for j in judged:
        if j.facet != facet:
            continue
        for a in j.side_a:
            for b in j.side_b:
                if a != b:
                    yield a, b, j.score_a


@dataclass
class HumanJudgement:
    facets: list[tuple[str, str]]  # (key, label) in the project's order
    rates: dict[tuple, dict[str, ranking.WinRate]]  # player → facet key → rate
    rankings: dict[str, list[ranking.Ranked]]  # facet key → best first

    def rate(self, player: tuple, facet: str) -> ranking.WinRate:
        return self.rates.get(player, {}).get(facet) or ranking.win_rate([])

    def rows_for(self, player: tuple) -> list[dict]:
        """One row per facet: the player's win rate there (template-friendly)."""
        return [
            {"key": key, "label": label, "rate": self.rate(player, key)}
            for key, label in self.facets
        ]

    def ranking_rows(self, facet: str) -> list[dict]:
        return [
            {
                "position": i + 1,
                "player": r.player,
                "label": player_label(r.player),
                "round_id": r.player[1] if r.player[0] == "round" else None,
                "strength": r.strength,
                "wins": r.wins,
                "games": r.games,
            }
            for i, r in enumerate(self.rankings.get(facet, []))
        ]


def human_judgement_for_project(*, project_id: int) -> HumanJudgement:
    """Win rates and Bradley–Terry rankings from every human judgement of feedback pairs."""
    facets = list(
        Facet.objects.filter(project_id=project_id, is_active=True).values_list("key", "label")
    )
    judged = _judged(project_id)
    rates = {
        player: {facet: ranking.win_rate(scores) for facet, scores in by_facet.items()}
        for player, by_facet in _outcomes(judged).items()
    }
    rankings = {key: ranking.bradley_terry(_games(judged, key)) for key, _ in facets}
    return HumanJudgement(facets=facets, rates=rates, rankings=rankings)


def round_player(round_) -> tuple:
    return ("round", round_.pk)


def base_player(round_) -> tuple | None:
    """The base model as a player, for a round trained from one (not from another round)."""
    return None if round_.from_round_id else ("base", round_.base_model)


def round_win_rates(*, round_) -> dict[str, dict]:
    """facet key → {wins, n, rate, low, high} of this round's candidates (the API's view)."""
    if round_.status != "done":
        return {}
    human = human_judgement_for_project(project_id=round_.project_id)
    return {
        row["key"]: {
            "wins": row["rate"].wins,
            "n": row["rate"].n,
            "rate": row["rate"].rate,
            "low": row["rate"].low,
            "high": row["rate"].high,
        }
        for row in human.rows_for(round_player(round_))
    }
