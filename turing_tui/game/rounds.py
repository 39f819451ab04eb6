"""Fair rounds: a human and a machine candidate, then a coin, then a guess on the record.

Fairness is the whole game. The truth is a fair coin drawn only once a human candidate
and a machine candidate are *both* in hand, so neither how long a fake took to generate
nor a dry pool can leak the answer: any wait happens before the coin, the same whatever
it would have shown. The candidate the coin did not pick is kept for the next round.

Machine tweets come from the pool of pre-generated tweets in the store; a
:class:`FakeSupply` thread keeps that pool topped up from the generator in the
background, with backoff when the generator fails. Human tweets are drawn from the
filtered corpus, skipping those this player has already been shown. Both texts go
through the same :func:`~turing_tui.corpus.tweet.normalize_text` before display.
"""

from __future__ import annotations

import html
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from turing_tui.backends.base import FakeTweet, TweetGenerator
from turing_tui.corpus.filters import MIN_CHARS, MIN_WORDS, has_link
from turing_tui.corpus.load import Corpus
from turing_tui.corpus.tweet import HumanTweet, normalize_text
from turing_tui.errors import UserError
from turing_tui.game.stats import Score
from turing_tui.net import Backoff
from turing_tui.store.db import RoundRecord, Store

Truth = Literal["human", "machine"]
HUMAN: Truth = "human"
MACHINE: Truth = "machine"
GUESSES = (HUMAN, MACHINE)


# -- what the supply thread reports ---------------------------------------------------------
@dataclass(frozen=True)
class GeneratorReady:
    """The generator is open; its fakes are pooled under ``model_id``."""

    model_id: str
    pool_size: int


@dataclass(frozen=True)
class PoolRefilled:
    """A batch was generated: ``added`` went into the pool, ``rejected`` were unfit."""

    added: int
    rejected: int
    pool_size: int


@dataclass(frozen=True)
class GeneratorFailed:
    """The generator failed; it is retried in ``retry_in`` seconds (None: given up)."""

    message: str
    retry_in: float | None


SupplyEvent = GeneratorReady | PoolRefilled | GeneratorFailed
SupplyHook = Callable[[SupplyEvent], None]


def copy_key(text: str) -> str:
    """What two texts share when one copies the other: same words, any spacing or case.

    Cheaper than :func:`~turing_tui.corpus.filters.text_key` (no regex): keying vc's
    ~48k training tweets takes ~0.1 s instead of ~0.7 s, and it is slightly stricter,
    as a copy that only moved a line break is still a copy.
    """
    return " ".join((html.unescape(text) if "&" in text else text).split()).casefold()


def fake_reject_reason(text: str, training_keys: frozenset[str] | set[str] = frozenset()) -> str | None:
    """Why a generated text may not be shown, or None: the corpus rules plus no copying.

    ``training_keys`` holds :func:`copy_key` of every training tweet.
    """
    if not text:
        return "empty"
    if has_link(text):
        return "link"
    if len(text) < MIN_CHARS or len(text.split()) < MIN_WORDS:
        return "too_short"
    if copy_key(text) in training_keys:
        return "copies a training tweet"
    return None


class FakeSupply:
    """The pool of machine tweets for one category and model, refilled in a thread.

    ``open_generator`` is called in the supply thread (loading a local model takes
    seconds; the game must not wait for it when the pool already holds tweets of that
    model). ``model_id`` may be given up front so pooled tweets are usable at once.
    """

    def __init__(
        self,
        store: Store,
        category: str,
        open_generator: Callable[[], TweetGenerator],
        *,
        model_id: str | None = None,
        player: str | None = None,
        low_water: int = 8,
        batch: int = 8,
        training_keys: frozenset[str] | set[str] = frozenset(),
        training_texts: Sequence[str] = (),
        on_event: SupplyHook | None = None,
        backoff: Backoff = Backoff(retries=1_000_000, base=1.0, cap=30.0),
        owns_generator: bool = True,
    ) -> None:
        self.store = store
        self.category = category
        self.model_id = model_id
        self.player = player  # with a player, only tweets they have not met are handed out
        self.low_water = low_water
        self.batch = batch
        # copy_key() of the training tweets (no fake may copy one). Texts given instead are
        # keyed in the supply thread, off the path of the first human candidate.
        self.training_keys = training_keys
        self._training_texts = training_texts
        self.on_event = on_event
        self.backoff = backoff
        self.owns_generator = owns_generator  # False: the caller closes it (it outlives this game)
        self.status = "starting the generator"
        self.failed: str | None = None  # set when the generator has given up for good
        self._open = open_generator
        self._generator: TweetGenerator | None = None
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handed: set[int] = set()  # pool ids handed out in this session

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> FakeSupply:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"fake-supply-{self.category}", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        generator, self._generator = self._generator, None
        if generator is not None and self.owns_generator:
            generator.close()

    def available(self) -> int:
        """Pooled tweets this supply could still hand out (to its player, if it has one)."""
        if self.model_id is None:
            return 0
        if self.player is None:
            return self.store.pool_size(self.category, self.model_id)
        return self.store.pool_size(self.category, self.model_id, unshown_only=False, unseen_by=self.player, exclude=frozenset(self._handed))

    def _emit(self, event: SupplyEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    # -- the consumer side -----------------------------------------------------------
    def take(self, timeout: float | None = None) -> FakeTweet | None:
        """A pooled fake (marked shown), waiting up to ``timeout`` seconds; None if none came."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stop.is_set():
            if self.model_id is not None:
                fake = self.store.take_fake(self.category, self.model_id, unseen_by=self.player, exclude=frozenset(self._handed))
                if fake is not None:
                    if fake.pool_id is not None:
                        self._handed.add(fake.pool_id)
                    with self._wake:  # the pool shrank: let the refiller look
                        self._wake.notify_all()
                    return fake
            if self.failed is not None:
                return None
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            with self._wake:
                self._wake.notify_all()
                self._wake.wait(0.25 if remaining is None else min(remaining, 0.25))
        return None

    # -- the producer side -----------------------------------------------------------
    def _sleep(self, seconds: float) -> None:
        with self._wake:
            self._wake.wait_for(self._stop.is_set, timeout=seconds)

    def _run(self) -> None:
        try:
            self._supply()
        except Exception as exc:  # noqa: BLE001 - the game must hear about it, not lose the thread
            if self._stop.is_set():
                return  # shutting down (the store may already be closed): nothing to report
            self.failed = self.status = f"The machine-tweet supply stopped: {exc}"
            self._emit(GeneratorFailed(self.failed, None))
            with self._wake:
                self._wake.notify_all()

    def _supply(self) -> None:
        attempt = 0
        while not self._stop.is_set() and self._generator is None:
            try:
                self.status = "starting the generator"
                self._generator = self._open()
            except UserError as exc:
                # A wrong path or a missing model will not fix itself: say so and stop.
                self.failed = self.status = str(exc)
                self._emit(GeneratorFailed(str(exc), None))
                with self._wake:
                    self._wake.notify_all()
                return
            except Exception as exc:  # noqa: BLE001 - reported to the player, then retried
                wait = self.backoff.delay(attempt)
                attempt += 1
                self.status = f"the generator did not start ({exc}); retrying in {wait:.0f} s"
                self._emit(GeneratorFailed(f"The generator did not start: {exc}", wait))
                self._sleep(wait)
        if self._generator is None:
            return
        if self._training_texts:
            keys = {" ".join((html.unescape(t) if "&" in t else t).split()).casefold() for t in self._training_texts}  # copy_key, inlined: ~2x faster on 50k tweets
            self.training_keys = frozenset(self.training_keys) | keys
            self._training_texts = ()
        self.model_id = self._generator.model_id
        self._emit(GeneratorReady(self.model_id, self.available()))
        attempt = 0
        while not self._stop.is_set():
            size = self.available()
            if size >= self.low_water:
                self.status = "ready"
                with self._wake:
                    self._wake.wait(1.0)
                continue
            self.status = "writing machine tweets"
            try:
                fakes = self._generator.generate(self.batch)
            except Exception as exc:  # noqa: BLE001 - any failure is shown and retried
                wait = self.backoff.delay(attempt)
                attempt += 1
                self.status = f"{exc} Retrying in {wait:.0f} s."
                self._emit(GeneratorFailed(str(exc), wait))
                self._sleep(wait)
                continue
            attempt = 0
            if self._stop.is_set():
                return
            kept: list[FakeTweet] = []
            for fake in fakes:
                text = normalize_text(fake.text)
                if fake_reject_reason(text, self.training_keys) is None:
                    kept.append(FakeTweet(text=text, model=self.model_id, base=fake.base, sampling=fake.sampling, source=fake.source))
            added = self.store.add_fakes(self.category, kept) if kept else 0
            size = self.available()
            self._emit(PoolRefilled(added=added, rejected=len(fakes) - len(kept), pool_size=size))
            if added == 0:
                # Nothing new (all rejected or duplicates): do not spin on a stuck model.
                self._sleep(self.backoff.delay(0))
            with self._wake:
                self._wake.notify_all()


# -- rounds ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Round:
    """One tweet put to the player. Exactly one of ``human``/``fake`` is set."""

    number: int
    category: str
    truth: Truth
    text: str  # normalised, exactly what is shown
    human: HumanTweet | None = None
    fake: FakeTweet | None = None
    model_id: str = ""  # the opponent model this round was played against


@dataclass(frozen=True)
class RoundResult:
    """A guess on the record."""

    round: Round
    guess: Truth
    answer_ms: int
    round_id: int

    @property
    def correct(self) -> bool:
        return self.guess == self.round.truth


@dataclass
class RoundDealer:
    """Deals fair rounds for one player and records each answer the moment it is given."""

    store: Store
    corpus: Corpus
    supply: FakeSupply
    player: str
    seed: int | None = None
    score: Score = field(default_factory=Score)

    def __post_init__(self) -> None:
        # Two streams: the coin must not depend on how many draws picking a tweet took.
        base = self.seed if self.seed is not None else random.SystemRandom().randrange(2**63)
        self._coin = random.Random(f"coin:{base}")
        self._picker = random.Random(f"pick:{base}")
        self._seen: set[str] = self.store.seen_tweet_ids(self.player, self.corpus.category)
        self._human: HumanTweet | None = None
        self._fake: FakeTweet | None = None
        self._number = 0
        self._lock = threading.Lock()

    @property
    def category(self) -> str:
        return self.corpus.category

    @property
    def unseen_human_tweets(self) -> int:
        return sum(1 for t in self.corpus.tweets if t.id not in self._seen)

    def deal(self, timeout: float | None = None, cancelled: Callable[[], bool] | None = None) -> Round | None:
        """The next round, once both candidates are ready; None on timeout or cancel."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if self._human is None:
                self._human = self.corpus.sample(self._picker, self._seen)
            while self._fake is None:
                if cancelled is not None and cancelled():
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                if self.supply.failed is not None:
                    return None
                self._fake = self.supply.take(0.2 if remaining is None else min(remaining, 0.2))
            # Both are in hand: only now flip the coin.
            truth: Truth = HUMAN if self._coin.random() < 0.5 else MACHINE
            self._number += 1
            if truth == HUMAN:
                human, self._human = self._human, None
                self._seen.add(human.id)
                return Round(self._number, self.category, truth, human.display_text, human=human, model_id=self._fake.model)
            fake, self._fake = self._fake, None
            return Round(self._number, self.category, truth, normalize_text(fake.text), fake=fake, model_id=fake.model)

    def answer(self, round_: Round, guess: Truth, answer_ms: int) -> RoundResult:
        """Record the guess (committed at once) and update the session score."""
        if guess not in GUESSES:
            raise ValueError(f"a guess is 'human' or 'machine', not {guess!r}")
        round_id = self.store.record_round(
            RoundRecord(
                player=self.player,
                category=self.category,
                truth=round_.truth,
                guess=guess,
                answer_ms=max(0, int(answer_ms)),
                tweet_id=round_.human.id if round_.human else None,
                fake_id=round_.fake.pool_id if round_.fake else None,
                model=round_.model_id or None,
            )
        )
        result = RoundResult(round_, guess, int(answer_ms), round_id)
        self.score.add(round_.truth, result.correct)
        return result
