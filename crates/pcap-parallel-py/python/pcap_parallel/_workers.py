"""Worker processes: a ProcessPoolExecutor that starts cleanly and stops
cleanly, and the functions the workers run.

Workers receive a chunk *locator* (a few hundred bytes: the file, the byte
range, the header context) and read their chunk themselves; only for
compressed input and pipes do the records travel with the locator, a
bounded number at a time.
"""

from __future__ import annotations

import collections
import io
import multiprocessing
import os
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterable, Iterator

from ._native import Chunk, ChunkLocator


def default_context() -> Any:
    """The start method: fork where there is one (Linux, as the original
    package relied on: callbacks defined in a script without a ``__main__``
    guard work), the platform's default elsewhere."""
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _ignore_sigint() -> None:
    # Ctrl-C is the parent's to handle: it stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def call_with_chunk(fn: Callable[[Chunk], Any], locator: ChunkLocator) -> Any:
    """Worker side of ``Capture.map``: ``fn(chunk)``."""
    return fn(locator.open())


def call_with_bytesio(fn: Callable[[io.BytesIO], Any], locator: ChunkLocator) -> Any:
    """Worker side of ``PCAPParallel``: ``fn(io.BytesIO(standalone capture))``."""
    return fn(locator.open().file())


def call_with_capture(fn: Callable[[Any], Any], path: str) -> Any:
    """Worker side of ``Flows.map``: ``fn(capture of one shard)``."""
    from .capture import open as open_capture

    return fn(open_capture(path, workers=1))


class WorkerPool:
    """A ProcessPoolExecutor of ``workers`` processes that ignore SIGINT.

    With the fork start method every worker is forked when the first task
    is submitted, so a task is submitted here, before the library starts
    any thread in this process (forking a process with threads running is
    what Python warns about)."""

    def __init__(self, workers: int, mp_context: Any = None) -> None:
        if isinstance(mp_context, str):
            mp_context = multiprocessing.get_context(mp_context)
        self.workers = max(1, int(workers))
        self.executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=mp_context or default_context(),
            initializer=_ignore_sigint,
        )
        self.executor.submit(os.getpid).result()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        return self.executor.submit(fn, *args)

    def close(self) -> None:
        """Waits for every task, then lets the workers go."""
        self.executor.shutdown(wait=True)

    def abort(self) -> None:
        """Cancels what has not started, stops the workers at once (their
        running tasks are abandoned) and waits until they are gone."""
        processes = list(getattr(self.executor, "_processes", {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            if p.is_alive():
                p.terminate()
        for p in processes:
            p.join()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def ordered(
    pool: WorkerPool,
    work: Callable[..., Any],
    fn: Callable[..., Any],
    items: Iterable[Any],
    bound: int,
    done: Callable[[Any], None] | None = None,
) -> Iterator[Any]:
    """Submits ``work(fn, item)`` for each item and yields the results in
    order, with at most ``bound`` tasks submitted and not yet yielded.
    ``done(item)`` is called as each result is yielded. An error raised by
    ``items`` (a broken capture) is raised after the results of every item
    before it."""
    pending: collections.deque[tuple[Any, Future]] = collections.deque()

    def first() -> Any:
        item, future = pending.popleft()
        result = future.result()
        if done is not None:
            done(item)
        return result

    source = iter(items)
    while True:
        try:
            item = next(source)
        except StopIteration:
            break
        except Exception:
            while pending:
                yield first()
            raise
        pending.append((item, pool.submit(work, fn, item)))
        while len(pending) >= bound:
            yield first()
    while pending:
        yield first()


def wait_below(running: set[Future], bound: int) -> set[Future]:
    """Waits until fewer than ``bound`` of ``running`` are unfinished;
    returns the unfinished ones."""
    running = {f for f in running if not f.done()}
    while len(running) >= bound:
        _, running = wait(running, return_when=FIRST_COMPLETED)
    return running
