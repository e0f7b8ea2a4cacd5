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
import sys
import threading
import time
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


#: How often (seconds) a worker's watcher thread checks that its parent lives.
PARENT_POLL = 0.5


def _die_with_parent(parent: int, pdeathsig: bool) -> None:
    """Makes this worker die when ``parent`` (the process whose pool it is
    in) does, however that one ends (SIGTERM, SIGKILL, a crash): a worker
    must never outlive the program whose work it does, even inside a
    callback that hangs.

    On Linux, for a worker forked by the parent's main thread
    (``pdeathsig``), the kernel sends it SIGKILL when that thread exits
    (``prctl(PR_SET_PDEATHSIG)``; not for other threads, which may end
    while the pool lives on). Everywhere, a daemon thread checks every
    :data:`PARENT_POLL` seconds that the parent lives (``os.getppid()``,
    or for a worker started by a fork server, the parent's pid) and kills
    the worker once it is gone."""
    direct = os.getppid() == parent
    if direct and pdeathsig and sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl
            pass

    def alive() -> bool:
        if direct:
            return os.getppid() == parent
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # pragma: no cover - another user's pid
            return True
        return True

    # The parent may have gone before prctl took effect.
    if not alive():
        os._exit(1)

    def watch() -> None:
        while alive():
            time.sleep(PARENT_POLL)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="pcap-parallel-parent-watch", daemon=True).start()


def _init_worker(parent: int, pdeathsig: bool) -> None:
    # Ctrl-C is the parent's to handle: it stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent, pdeathsig)


def call_with_chunk(fn: Callable[[Chunk], Any], locator: ChunkLocator) -> Any:
    """Worker side of ``Capture.map``: ``fn(chunk)``. Raises ``CaptureError``
    (the file changed) instead of the result if the file shrank while the
    chunk was in use (its vanished bytes read as zeros, never a SIGBUS)."""
    chunk = locator.open()
    result = fn(chunk)
    chunk.check_unchanged()
    return result


def call_with_bytesio(fn: Callable[[io.BytesIO], Any], locator: ChunkLocator) -> Any:
    """Worker side of ``PCAPParallel``: ``fn(io.BytesIO(standalone capture))``
    (the copy raises if the file shrank while it was made)."""
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
            initializer=_init_worker,
            # Every worker is forked now (below), by this thread.
            initargs=(os.getpid(), threading.current_thread() is threading.main_thread()),
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
