"""One capture as byte-range partitions, for clusters.

:func:`partitions` (also ``pcap_parallel.partitions``) cuts a capture into
:class:`Partition` objects (plain, picklable data) from its size alone. A worker anywhere reads one with
:func:`read` (``pcap_parallel._native.read_partition``): it finds its first
packet boundary by the same guess as the in-process engine, walks the
packets that *start* inside its byte range (reading past the end for the
last one), and reports where its walk really started and ended. The driver
checks the reports in file order with :func:`verify`: each partition must
start where the one before it ended, in the same state; a partition whose
guess was wrong is read again from the right place (counted), so the union
is exactly the sequential reading. See ``pcap_parallel.dask`` for the
cluster side, and the library's ``partition`` module for the details.

Paths are local files, or URLs fsspec understands (``s3://``, ``gs://``,
``http(s)://``, ``file://``): a worker then reads only its range, by ranged
reads. Compressed captures are one partition each (``whole``), read whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, TypeVar

from . import _native

T = TypeVar("T")

#: Magic numbers of the compression formats the library reads.
_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd", b"\x04\x22\x4d\x18")


@dataclass(frozen=True)
class Partition:
    """A byte range of a capture: ``start``..``end`` of ``path`` (of
    ``size`` bytes), number ``index`` in file order. ``whole`` for a
    compressed capture, which is one partition read whole."""

    path: str
    index: int
    start: int
    end: int
    size: int
    whole: bool = False
    storage_options: dict = field(default_factory=dict, compare=False, hash=False)


def _is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://") :] if path.startswith("file://") else path


def _fs(path: str, storage_options: dict) -> tuple[Any, str]:
    import fsspec

    return fsspec.core.url_to_fs(path, **storage_options)


def _size_and_head(path: str, storage_options: dict) -> tuple[int, bytes]:
    if _is_remote(path):
        fs, p = _fs(path, storage_options)
        size = int(fs.size(p))
        head = fs.cat_file(p, start=0, end=min(size, 8)) if size else b""
        return size, head
    with open(_local(path), "rb") as f:
        return os.fstat(f.fileno()).st_size, f.read(8)


def partitions(
    path: str | os.PathLike, target_bytes: int = 64 << 20, *, storage_options: Optional[dict] = None
) -> list[Partition]:
    """The partitions of the capture at ``path``, of ``target_bytes`` each
    (the last one takes the rest). Reads the size and the first 8 bytes (to
    tell a compressed capture, which is one partition), never the body."""
    path = os.fspath(path)
    options = dict(storage_options or {})
    size, head = _size_and_head(path, options)
    if head.startswith(_COMPRESSED):
        return [Partition(path, 0, 0, size, size, True, options)]
    return [
        Partition(path, i, start, end, size, False, options)
        for i, start, end in _native.partition_ranges(size, int(target_bytes))
    ]


def _source(part: Partition) -> Any:
    if not _is_remote(part.path):
        return _local(part.path)
    fs, p = _fs(part.path, part.storage_options)
    # No read-ahead cache: only the bytes the partition asks for are read.
    f = fs.open(p, "rb", cache_type="none", block_size=1 << 20)
    return (f, part.path, part.size)


def read(part: Partition, entry: Optional[tuple] = None) -> "_native.PartitionRead":
    """Reads one partition (not a ``whole`` one): from a guessed boundary,
    or from ``entry`` (what :func:`verify` asks a recompute to start from)."""
    src = _source(part)
    try:
        return _native.read_partition(src, part.index, part.start, part.end, entry)
    finally:
        if isinstance(src, tuple):
            src[0].close()


class Verified(list):
    """What :func:`verify` returns: the values of the partitions in file
    order (a list), with ``recomputed`` (partitions read again) and
    ``first_packet_numbers`` (one per value)."""

    recomputed: int = 0
    first_packet_numbers: list


def verify(
    parts: list[Partition],
    reports: Iterable[tuple[tuple, T]],
    recompute: Callable[[Partition, tuple], tuple[tuple, T]],
) -> Verified:
    """The driver's check. ``reports`` gives, in the order of ``parts``,
    each partition's (report, value); ``recompute(part, entry)`` reads a
    partition again from ``entry`` and gives its (report, value). Returns
    the values of the verified partitions; raises the capture's error (a
    :class:`pcap_parallel.FormatError` whose ``results`` are the values
    before it, those of the faulty partition's packets before the fault
    included) at the first fault."""
    out = Verified()
    out.first_packet_numbers = []
    if not parts:
        return out
    verifier = _native.Verifier(parts[0].path)
    for part, (report, value) in zip(parts, reports):
        while True:
            verdict, arg = verifier.check(report)
            if verdict == "recompute":
                report, value = recompute(part, arg)
                continue
            break
        out.recomputed = verifier.recomputed
        if verdict != "accept":
            break
        out.append(value)
        out.first_packet_numbers.append(arg + 1)
        if report[4] is not None:
            # The fault as the library gives it, numbered in the capture:
            # read on the driver, once.
            error = read(part, report[1]).error(arg)
            error.results = list(out)
            raise error
    return out


def map_partitions(fn: Callable[[Any], T], part: Partition, entry: Optional[tuple] = None) -> tuple:
    """Reads ``part`` and applies ``fn`` to its records as a standalone
    capture in an ``io.BytesIO`` (the original ``PCAPParallel`` contract):
    (report, [value]), or (report, []) for a partition without packets."""
    r = read(part, entry)
    report = r.report
    if report[3] == 0:
        return report, []
    return report, [fn(r.chunk().file())]


def map_whole(fn: Callable[[Any], T], part: Partition) -> list[T]:
    """``fn`` over the chunks of a compressed capture read whole, in order."""
    from .capture import open as open_capture

    if _is_remote(part.path):
        fs, p = _fs(part.path, part.storage_options)
        with fs.open(p, "rb") as f:
            return [fn(c.file()) for c in open_capture(f).chunks()]
    return [fn(c.file()) for c in open_capture(_local(part.path)).chunks()]
