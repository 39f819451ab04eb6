"""Scoring and leaderboard arithmetic: Wilson intervals, streaks, ranking."""

from __future__ import annotations

import random

import pytest

from turing_tui.game.leaderboard import fooling_fakes, model_board, player_board
from turing_tui.game.stats import Score, percent, wilson_interval
from turing_tui.store.db import RoundRecord, Store


def test_wilson_matches_published_values() -> None:
    # Wilson (1927) as tabulated by Newcombe (1998), method 3: 81/263 -> 0.2553-0.3662.
    low, high = wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=5e-4)
    assert high == pytest.approx(0.3662, abs=5e-4)
    # 0/10 and 10/10 stay inside [0, 1] and are not degenerate.
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=5e-4))
    assert wilson_interval(10, 10) == (pytest.approx(0.7225, abs=5e-4), 1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


def test_score_counts_streaks_and_split_by_truth() -> None:
    score = Score()
    for truth, correct in [("human", True), ("machine", True), ("machine", False), ("human", True), ("human", True), ("machine", True)]:
        score.add(truth, correct)
    assert (score.right, score.total) == (5, 6)
    assert (score.streak, score.best_streak) == (3, 3)
    assert (score.human_right, score.human_rounds) == (3, 3)
    assert (score.machine_right, score.machine_rounds) == (2, 3)
    assert score.summary() == "5/6 83% | streak 3 (best 3) | human 3/3 100% | machine 2/3 67%"
    assert percent(0, 0) == "—"


def _play(store: Store, player: str, category: str, answers: list[tuple[str, str]], model: str = "m1") -> None:
    for truth, guess in answers:
        store.record_round(RoundRecord(player=player, category=category, truth=truth, guess=guess, answer_ms=900, model=model))


def _python_best_streak(flags: list[bool]) -> int:
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def test_best_streak_sql_matches_a_plain_loop(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(3)
    with Store(tmp_path / "db.sqlite3") as store:
        expected = {}
        for player in ("ann", "bob", "cy"):
            flags = [rng.random() < 0.6 for _ in range(rng.randrange(5, 60))]
            expected[player] = (_python_best_streak(flags), sum(flags), len(flags))
            _play(store, player, "vc", [("human", "human" if f else "machine") for f in flags])
            _play(store, player, "covid19", [("machine", "human")] * 2)  # other category: no effect
        board = {p.player: p for p in player_board(store, "vc", min_rounds=1)}
        for player, (best, right, total) in expected.items():
            assert (board[player].best_streak, board[player].correct, board[player].rounds) == (best, right, total)


def test_players_rank_by_interval_lower_bound_and_need_min_rounds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with Store(tmp_path / "db.sqlite3") as store:
        _play(store, "lucky", "vc", [("human", "human")] * 3)  # 3/3: too few to rank
        _play(store, "steady", "vc", [("human", "human")] * 80 + [("machine", "human")] * 20)  # 80/100
        _play(store, "coin", "vc", [("human", "human")] * 6 + [("machine", "human")] * 6)  # 6/12
        board = player_board(store, "vc", min_rounds=10)
        assert [(p.player, p.rank) for p in board] == [("steady", 1), ("coin", 2), ("lucky", None)]
        assert board[0].as_dict()["accuracy"] == 0.8
        assert board[0].as_dict()["ci_low"] == pytest.approx(wilson_interval(80, 100)[0], abs=1e-4)


def test_model_board_counts_only_machine_rounds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from turing_tui.backends.base import FakeTweet

    with Store(tmp_path / "db.sqlite3") as store:
        store.add_fakes("vc", [FakeTweet(text=f"fake tweet {i} about seed rounds", model="m1") for i in range(3)])
        fakes = [store.take_fake("vc", "m1") for _ in range(3)]
        for fake, guesses in zip(fakes, [["human", "human"], ["machine"], ["human", "machine"]]):
            for guess in guesses:
                assert fake is not None
                store.record_round(RoundRecord("ann", "vc", "machine", guess, 500, fake_id=fake.pool_id, model="m1"))
        _play(store, "ann", "vc", [("human", "human")] * 4, model="m1")  # human rounds never count
        [rate] = model_board(store, "vc")
        assert (rate.model, rate.rounds, rate.fooled) == ("m1", 5, 3)
        assert rate.as_dict()["fool_rate"] == 0.6
        top = fooling_fakes(store, "vc")
        assert [(f.fake.text, f.fooled, f.judged) for f in top] == [
            ("fake tweet 0 about seed rounds", 2, 2),
            ("fake tweet 2 about seed rounds", 1, 2),
        ]
