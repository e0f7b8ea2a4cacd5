"""Progress reporting: a callable, a tqdm bar, or True for a new tqdm bar."""

from __future__ import annotations

from typing import Any, Callable, Optional

#: ``progress(bytes_done, bytes_total, packets_done)``. Bytes are of the
#: input as stored (compressed bytes for compressed files); the total is 0
#: when unknown (a pipe).
ProgressCallback = Callable[[int, int, int], Any]


class TqdmProgress:
    """Feeds a tqdm bar (or anything with ``update`` and ``total``): sets
    its total once known and advances it to the bytes done."""

    def __init__(self, bar: Any, own: bool = False) -> None:
        self.bar = bar
        self.own = own
        self.last = 0

    def __call__(self, done: int, total: int, packets: int) -> None:
        if total and getattr(self.bar, "total", None) != total:
            self.bar.total = total
            if hasattr(self.bar, "refresh"):
                self.bar.refresh()
        if done > self.last:
            self.bar.update(done - self.last)
            self.last = done
        if hasattr(self.bar, "set_postfix_str"):
            self.bar.set_postfix_str(f"{packets} packets", refresh=False)

    def close(self) -> None:
        if self.own:
            self.bar.close()


def check(progress: Any) -> None:
    """Fails at once, not at the first run, if ``progress`` cannot be used:
    ``progress=True`` needs tqdm (the ``progress`` extra)."""
    if progress is True:
        try:
            import tqdm.auto  # noqa: F401
        except ImportError as e:
            raise ModuleNotFoundError(
                "progress=True needs tqdm: pip install 'pcap-parallel[progress]'", name="tqdm"
            ) from e


def adapt(progress: Any, desc: str) -> Optional[ProgressCallback]:
    """The callback for what the user passed as ``progress``."""
    if progress is None or progress is False:
        return None
    if progress is True:
        from tqdm.auto import tqdm

        return TqdmProgress(
            tqdm(desc=desc, unit="B", unit_scale=True, unit_divisor=1024), own=True
        )
    if hasattr(progress, "update") and hasattr(progress, "total"):
        return TqdmProgress(progress)
    if callable(progress):
        return progress
    raise TypeError("progress must be True, a tqdm bar or a callable(done, total, packets)")


def close(callback: Optional[ProgressCallback]) -> None:
    if isinstance(callback, TqdmProgress):
        callback.close()
