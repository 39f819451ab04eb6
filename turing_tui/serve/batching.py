"""Dynamic batching: many concurrent requests, one generate call.

A causal LM on a CPU or GPU costs nearly the same per decoding step whether it carries one
sequence or thirty-two, so a server that runs each request on its own spends most of its
time on per-step overhead. :class:`CompletionBatcher` queues requests, waits a short window
(a few milliseconds) for company, and hands up to ``max_batch`` sequences to the model in
one call on a single model thread, so the asyncio event loop never blocks on the model and
requests that pile up while the model is busy form the next batch by themselves.

Only requests that share sampling settings (temperature, top-p, top-k, max new tokens,
``n`` and stop strings) go in one call, because a generate call takes one setting for the
whole batch. A request with its own seed always runs alone: a seeded batch is reproducible
only for the exact same batch, so sharing it would make "same seed, same tweet" a lie.
A failing batch is retried request by request, so one bad prompt cannot fail its
neighbours, and no error ever stops the scheduler.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("turing_tui.serve")

# complete(prompts, sampling, n, stop) -> one list of n completions per prompt
CompleteFn = Callable[[list[str], Any, int, "tuple[str, ...] | None"], list[list[Any]]]


class Overloaded(Exception):
    """The queue is full; the caller should answer 503 and ask the client to retry."""


@dataclass(frozen=True)
class BatchPolicy:
    """How requests are grouped. ``max_batch=1`` turns batching off."""

    max_batch: int = 32  # sequences (prompts x n) per generate call
    max_wait_s: float = 0.005  # how long the first request waits for company
    max_queue: int = 1024  # requests waiting before new ones get 503

    @property
    def enabled(self) -> bool:
        return self.max_batch > 1


BATCHING_OFF = BatchPolicy(max_batch=1, max_wait_s=0.0)


@dataclass
class BatcherStats:
    """Counters for /health and the benchmark."""

    requests: int = 0
    batches: int = 0
    sequences: int = 0
    largest_batch: int = 0
    failures: int = 0
    busy_s: float = 0.0  # time the model thread spent generating

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(eq=False)
class _Pending:
    prompts: list[str]
    sampling: Any
    n: int
    stop: tuple[str, ...] | None
    future: asyncio.Future[list[list[Any]]]
    key: Any = None
    enqueued: float = field(default_factory=time.perf_counter)

    @property
    def rows(self) -> int:
        return len(self.prompts) * self.n


def _sampling_key(sampling: Any) -> Any:
    if dataclasses.is_dataclass(sampling) and not isinstance(sampling, type):
        return tuple(getattr(sampling, f.name) for f in dataclasses.fields(sampling))
    return sampling


class CompletionBatcher:
    """Queue of completion requests served by one model thread in dynamic batches.

    Create it inside a running event loop (``await batcher.start()``) and close it on
    shutdown. :meth:`submit` is safe to call from many tasks at once.
    """

    def __init__(self, complete: CompleteFn, policy: BatchPolicy = BatchPolicy()) -> None:
        if policy.max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._complete = complete
        self.policy = policy
        self.stats = BatcherStats()
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="turing-tui-model")

    @property
    def queued(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def start(self) -> None:
        if self._task is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._schedule(), name="turing-tui-batcher")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._queue is not None:
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if not item.future.done():
                    item.future.set_exception(Overloaded("the server is shutting down"))
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(
        self,
        prompts: Sequence[str],
        sampling: Any,
        *,
        n: int = 1,
        stop: Sequence[str] | None = None,
    ) -> list[list[Any]]:
        """Complete ``prompts`` (``n`` each) once a batch carrying them has run."""
        if self._queue is None:
            raise RuntimeError("CompletionBatcher.start() was not awaited")
        if self._queue.qsize() >= self.policy.max_queue:
            raise Overloaded(f"{self._queue.qsize()} requests are already waiting")
        loop = asyncio.get_running_loop()
        item = _Pending(
            prompts=list(prompts),
            sampling=sampling,
            n=n,
            stop=tuple(stop) if stop else None,
            future=loop.create_future(),
        )
        seeded = getattr(sampling, "seed", None) is not None
        # A seeded request gets a key no other request shares (its own identity).
        item.key = ("seeded", id(item)) if seeded else (_sampling_key(sampling), n, item.stop)
        self.stats.requests += 1
        self._queue.put_nowait(item)
        return await item.future

    # -- the scheduler ------------------------------------------------------------------
    async def _schedule(self) -> None:
        assert self._queue is not None
        while True:
            first = await self._queue.get()
            try:
                batch = await self._gather(first)
                for group in self._groups(batch):
                    await self._run(group)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the scheduler die: log and keep serving
                log.exception("batch scheduler error")

    async def _gather(self, first: _Pending) -> list[_Pending]:
        """The first request plus whatever arrives within the wait window, up to a batch."""
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        batch = [first]
        rows = first.rows
        deadline = loop.time() + self.policy.max_wait_s
        while rows < self.policy.max_batch:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            batch.append(item)
            rows += item.rows
        return batch

    def _groups(self, batch: list[_Pending]) -> list[list[_Pending]]:
        """Split by sampling key (first-come order), each group at most ``max_batch`` rows."""
        by_key: dict[Any, list[list[_Pending]]] = {}
        for item in batch:
            if item.future.done():  # the client went away
                continue
            chunks = by_key.setdefault(item.key, [[]])
            current = chunks[-1]
            if current and sum(p.rows for p in current) + item.rows > self.policy.max_batch:
                current = []
                chunks.append(current)
            current.append(item)
        return [chunk for chunks in by_key.values() for chunk in chunks if chunk]

    async def _run(self, group: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        head = group[0]
        prompts = [p for item in group for p in item.prompts]
        started = time.perf_counter()
        try:
            results = await loop.run_in_executor(
                self._executor, self._complete, prompts, head.sampling, head.n, head.stop
            )
            if len(results) != len(prompts):
                raise RuntimeError(f"the model returned {len(results)} results for {len(prompts)} prompts")
        except Exception as exc:
            self.stats.busy_s += time.perf_counter() - started
            if len(group) > 1:
                # One request may be the culprit: give each its own call.
                for item in group:
                    await self._run([item])
                return
            self.stats.failures += 1
            log.warning("generation failed: %s: %s", type(exc).__name__, exc)
            if not head.future.done():
                head.future.set_exception(exc)
            return
        self.stats.busy_s += time.perf_counter() - started
        self.stats.batches += 1
        self.stats.sequences += len(prompts) * head.n
        self.stats.largest_batch = max(self.stats.largest_batch, len(prompts) * head.n)
        offset = 0
        for item in group:
            part = results[offset : offset + len(item.prompts)]
            offset += len(item.prompts)
            if not item.future.done():
                item.future.set_result(part)
