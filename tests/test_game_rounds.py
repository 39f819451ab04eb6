"""Fair rounds: the coin waits for both candidates, answers are on the record at once."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from turing_tui.backends.base import FakeTweet
from turing_tui.corpus.load import load_category
from turing_tui.game.rounds import (
    HUMAN,
    MACHINE,
    FakeSupply,
    GeneratorFailed,
    GeneratorReady,
    PoolRefilled,
    RoundDealer,
    copy_key,
    fake_reject_reason,
)
from turing_tui.paths import Paths
from turing_tui.store.db import Store

from tests.gamekit import ScriptedGenerator, fill_pool, wait_for, write_corpus


@pytest.fixture
def store(paths: Paths):  # type: ignore[no-untyped-def]
    with Store(paths.db_path) as store:
        yield store


def _game(paths: Paths, store: Store, generator: ScriptedGenerator, *, seed: int = 1, player: str = "ann", **supply_kw: object):  # type: ignore[no-untyped-def]
    corpus = load_category(paths, "vc")
    supply = FakeSupply(store, "vc", lambda: generator, model_id=generator.model_id, player=player, **supply_kw)  # type: ignore[arg-type]
    return RoundDealer(store, corpus, supply, player, seed=seed), supply


def test_rounds_are_recorded_at_once_with_everything_the_leaderboard_needs(paths: Paths, store: Store) -> None:
    ids = write_corpus(paths, n=30)
    generator = ScriptedGenerator()
    fill_pool(store, "vc", generator, 20)
    dealer, supply = _game(paths, store, generator)
    truths = []
    for _ in range(12):
        round_ = dealer.deal(timeout=2)
        assert round_ is not None
        truths.append(round_.truth)
        result = dealer.answer(round_, HUMAN, answer_ms=321)
        row = store.rounds()[-1]  # committed before answer() returned
        assert row["id"] == result.round_id and row["truth"] == round_.truth and row["guess"] == "human"
        assert row["correct"] == int(round_.truth == HUMAN) and row["answer_ms"] == 321
        assert row["model"] == "scripted-gpt"
        if round_.truth == HUMAN:
            assert row["tweet_id"] in ids and row["fake_id"] is None and round_.human is not None
            assert round_.text == round_.human.display_text
        else:
            assert row["fake_id"] == round_.fake.pool_id and row["tweet_id"] is None  # type: ignore[union-attr]
    assert set(truths) == {HUMAN, MACHINE}
    assert dealer.score.total == 12 and dealer.score.right == truths.count(HUMAN)
    supply.close()


def test_no_round_is_dealt_until_a_machine_tweet_is_ready_whatever_the_coin(paths: Paths, store: Store) -> None:
    """If the pool is dry, every seed waits: a human round never slips out early."""
    write_corpus(paths, n=10)
    for seed in range(25):
        dealer, supply = _game(paths, store, ScriptedGenerator(fail_always=True), seed=seed)
        assert dealer.deal(timeout=0.02) is None
        assert supply.model_id is not None and store.round_count() == 0


def test_the_coin_is_drawn_after_a_slow_machine_tweet_arrives(paths: Paths, store: Store) -> None:
    write_corpus(paths, n=40)
    release = threading.Event()

    class Gated(ScriptedGenerator):
        def generate(self, n: int) -> list[FakeTweet]:
            release.wait(10)
            return super().generate(n)

    generator = Gated()
    dealer, supply = _game(paths, store, generator, seed=4, low_water=2, batch=2)
    supply.start()
    got: list[object] = []
    thread = threading.Thread(target=lambda: got.append(dealer.deal(timeout=10)))
    thread.start()
    time.sleep(0.3)
    assert got == []  # a human tweet was ready all along, yet nothing was dealt
    release.set()
    thread.join(10)
    assert got and got[0] is not None
    supply.close()


def test_truth_is_a_fair_coin_and_the_unused_candidate_waits(paths: Paths, store: Store) -> None:
    write_corpus(paths, n=400)
    generator = ScriptedGenerator()
    fill_pool(store, "vc", generator, 300)
    dealer, _ = _game(paths, store, generator, seed=11)
    rounds = [dealer.deal(timeout=1) for _ in range(400)]
    counts = Counter(r.truth for r in rounds if r)
    # 400 fair flips: 200 +/- 3 sd (sd = 10) covers 99.7% of seeds.
    assert 170 <= counts[HUMAN] <= 230
    # The fake not used by a human round is kept for the next round, so the pool was
    # drawn once per machine round, plus the candidate still held after a human round.
    shown = store.query("SELECT SUM(times_shown) FROM fakes")[0][0]
    assert shown == counts[MACHINE] + (rounds[-1].truth == HUMAN)  # type: ignore[union-attr]


def test_same_seed_same_rounds(paths: Paths, store: Store) -> None:
    write_corpus(paths, n=50)
    generator = ScriptedGenerator()
    fill_pool(store, "vc", generator, 40)
    a, _ = _game(paths, store, generator, seed=5, player="p1")
    first = [(r.truth, r.human.id if r.human else None) for r in (a.deal(timeout=1) for _ in range(10)) if r]
    b, _ = _game(paths, store, generator, seed=5, player="p2")
    second = [(r.truth, r.human.id if r.human else None) for r in (b.deal(timeout=1) for _ in range(10)) if r]
    assert first == second


def test_a_player_is_not_shown_the_same_human_tweet_twice_until_exhausted(paths: Paths, store: Store) -> None:
    ids = write_corpus(paths, n=12)
    generator = ScriptedGenerator()
    fill_pool(store, "vc", generator, 200)
    seen: list[str] = []
    for session in range(3):  # across sessions: the store remembers what was shown
        dealer, _ = _game(paths, store, generator, seed=session)
        while len([i for i in seen]) < 4 * (session + 1):
            round_ = dealer.deal(timeout=1)
            assert round_ is not None
            if round_.human:
                seen.append(round_.human.id)
                dealer.answer(round_, MACHINE, 10)
    assert len(seen) == len(set(seen)) == 12 and set(seen) == set(ids)
    dealer, _ = _game(paths, store, generator, seed=9)  # exhausted: tweets come round again
    round_ = next(r for r in (dealer.deal(timeout=1) for _ in range(20)) if r and r.human)
    assert round_.human.id in ids  # type: ignore[union-attr]


def test_supply_refills_in_the_background_and_rejects_unfit_fakes(paths: Paths, store: Store) -> None:
    write_corpus(paths, n=10)
    copied = "Invented tweet number 3 about startups and coffee"  # a training tweet, verbatim

    class Mixed(ScriptedGenerator):
        def generate(self, n: int) -> list[FakeTweet]:
            good = super().generate(n)
            bad = [FakeTweet(text=copied, model=self.model_id), FakeTweet(text="see https://x.co/a now ok", model=self.model_id), FakeTweet(text="  too  short ", model=self.model_id)]
            return good + bad

    events: list[object] = []
    corpus = load_category(paths, "vc")
    supply = FakeSupply(
        store, "vc", Mixed, low_water=6, batch=3, training_texts=[t.text for t in corpus.tweets], on_event=events.append
    ).start()
    assert wait_for(lambda: store.pool_size("vc", "scripted-gpt") >= 6)
    texts = [row[0] for row in store.query("SELECT text FROM fakes")]
    assert copied not in texts and all("http" not in t for t in texts)
    assert isinstance(events[0], GeneratorReady)
    assert any(isinstance(e, PoolRefilled) and e.rejected == 3 for e in events)
    supply.close()
    keys = {copy_key("Hello  there\nfriends of the POD &amp; co")}
    assert fake_reject_reason("hello there friends of the pod & co", keys) == "copies a training tweet"
    assert fake_reject_reason("hello there friends of the pod & cousins", keys) is None


def test_a_failing_generator_is_retried_with_a_status_then_recovers(paths: Paths, store: Store) -> None:
    from turing_tui.net import Backoff

    write_corpus(paths, n=10)
    generator = ScriptedGenerator(fail_times=2)
    events: list[object] = []
    dealer, supply = _game(paths, store, generator, low_water=2, batch=2, on_event=events.append, backoff=Backoff(retries=100, base=0.01, cap=0.02))
    supply.start()
    round_ = dealer.deal(timeout=10)
    assert round_ is not None
    failures = [e for e in events if isinstance(e, GeneratorFailed)]
    assert len(failures) == 2 and all(f.retry_in is not None and "503" in f.message for f in failures)
    supply.close()
    assert generator.closed


def test_a_generator_that_cannot_open_stops_the_game_with_its_sentence(paths: Paths, store: Store) -> None:
    from turing_tui.errors import UserError

    write_corpus(paths, n=10)

    def broken() -> ScriptedGenerator:
        raise UserError("No model at /nowhere; pass a checkpoint directory.")

    events: list[object] = []
    corpus = load_category(paths, "vc")
    supply = FakeSupply(store, "vc", broken, on_event=events.append).start()
    dealer = RoundDealer(store, corpus, supply, "ann", seed=1)
    assert dealer.deal(timeout=5) is None
    assert supply.failed == "No model at /nowhere; pass a checkpoint directory."
    assert isinstance(events[-1], GeneratorFailed) and events[-1].retry_in is None
    supply.close()


def test_both_sides_are_normalised_the_same_way(paths: Paths, store: Store) -> None:
    from turing_tui.corpus.tweet import normalize_text

    write_corpus(paths, n=5, text="Ship  it &amp; learn\r\n\r\n\r\nthen   repeat, friends")
    generator = ScriptedGenerator()
    store.add_fakes("vc", [FakeTweet(text="Ship  it &amp; learn\r\n\r\n\r\nthen  repeat, folks", model=generator.model_id)])
    fill_pool(store, "vc", generator, 5)
    dealer, _ = _game(paths, store, generator, seed=2)
    texts = {r.truth: r.text for r in (dealer.deal(timeout=0.05) for _ in range(12)) if r}
    assert texts[HUMAN] == "Ship it & learn\n\nthen repeat, friends" == normalize_text(texts[HUMAN])
    assert normalize_text(texts[MACHINE]) == texts[MACHINE]


def test_a_player_never_meets_the_same_machine_tweet_twice(paths: Paths, store: Store) -> None:
    """A revealed fake seen again would give the answer away: when the player has met every
    pooled fake, the round waits for new ones instead of repeating one."""
    write_corpus(paths, n=50)
    generator = ScriptedGenerator(fail_always=True)  # nothing new will come
    store.add_fakes("vc", [FakeTweet(text=f"Pooled machine tweet {i} about compounding", model=generator.model_id) for i in range(6)])
    machine_seen: list[int] = []
    for session in range(2):
        dealer, supply = _game(paths, store, generator, seed=session)
        while True:
            round_ = dealer.deal(timeout=0.3)
            if round_ is None:
                break
            if round_.fake is not None:
                machine_seen.append(round_.fake.pool_id)  # type: ignore[arg-type]
            dealer.answer(round_, HUMAN, 5)
    assert sorted(machine_seen) == sorted(set(machine_seen)) and len(machine_seen) >= 5
    other, _ = _game(paths, store, generator, seed=1, player="newcomer")  # others still get them
    assert any(r is not None and r.fake is not None for r in (other.deal(timeout=0.3) for _ in range(10)))
