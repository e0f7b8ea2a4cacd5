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

import glob
import operator
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, TypeVar

from . import _native

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow

T = TypeVar("T")

#: The smallest partition, in bytes: every partition is a task, a report
#: and (for Dask/Spark) an object on the scheduler, so below this a capture
#: would cost more to schedule than to read. The environment variable
#: ``PCAP_PARALLEL_MIN_PARTITION_BYTES`` lowers it (at least 1): for tests
#: that cut small captures at many boundaries.
MIN_PARTITION_BYTES = 64 << 10

#: The largest partition, in bytes (1 TiB): a partition read from an
#: object store is held in memory.
MAX_PARTITION_BYTES = 1 << 40


def _min_partition_bytes() -> int:
    value = os.environ.get("PCAP_PARALLEL_MIN_PARTITION_BYTES")
    if not value:
        return MIN_PARTITION_BYTES
    try:
        return max(1, int(value))
    except ValueError:
        raise ValueError(f"PCAP_PARALLEL_MIN_PARTITION_BYTES={value!r} is not a whole number") from None


def checked_partition_size(value: Any, name: str = "partition_size") -> int:
    """``value`` as a partition size in bytes, or ValueError (TypeError for
    what is not a whole number) saying the bounds."""
    if isinstance(value, str):  # a Spark option
        try:
            size = int(value.strip())
        except ValueError:
            raise ValueError(f"{name} must be a whole number of bytes, not {value!r}") from None
    elif isinstance(value, bool):
        raise TypeError(f"{name} must be a whole number of bytes, not {value!r}")
    else:
        try:
            size = operator.index(value)
        except TypeError:
            raise TypeError(f"{name} must be a whole number of bytes, not {value!r}") from None
    low = _min_partition_bytes()
    if not low <= size <= MAX_PARTITION_BYTES:
        raise ValueError(
            f"{name} must be between {low} and {MAX_PARTITION_BYTES} bytes (1 TiB), not {size}"
        )
    return size


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
    #: What the file was when it was partitioned (:func:`identity`): a
    #: worker whose file is no longer that raises instead of reading it.
    identity: Optional[tuple] = field(default=None, compare=False, hash=False)


def _is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://") :] if path.startswith("file://") else path


def _fs(path: str, storage_options: dict) -> tuple[Any, str]:
    import fsspec

    return fsspec.core.url_to_fs(path, **storage_options)


#: The fields of an object store's file info that change when the object is
#: written again (s3fs, gcsfs, adlfs, and the HTTP ETag/Last-Modified).
_VERSION_KEYS = (
    "ETag", "etag", "VersionId", "version_id", "generation", "md5Hash", "content_md5",
    "LastModified", "last_modified", "mtime", "updated", "Last-Modified",
)


def _local_identity(st: os.stat_result) -> tuple:
    return ("local", st.st_size, st.st_mtime_ns, st.st_ino)


def _remote_identity(info: dict) -> tuple:
    return ("remote", int(info["size"]), *((k, str(info[k])) for k in _VERSION_KEYS if info.get(k) is not None))


def identity(path: str, storage_options: Optional[dict] = None) -> tuple:
    """What the file at ``path`` is now: for a local file its size,
    modification time (ns) and inode; for an fsspec URL its size and the
    version fields its store gives (S3's ETag and VersionId, GCS's
    generation, ...). Equal identities at partitioning and at reading are
    taken as the same bytes; see :func:`check_identity`."""
    if _is_remote(path):
        fs, p = _fs(path, dict(storage_options or {}))
        fs.invalidate_cache(p)  # a listing cached by a glob would be stale
        return _remote_identity(fs.info(p))
    return _local_identity(os.stat(_local(path)))


def check_identity(part: Partition) -> None:
    """Raises ``CaptureError`` if the file of ``part`` is no longer the one
    it was cut from (another size, modification time, inode, ETag or
    version): rows read from it would mix two files. Partitions made
    without an identity are not checked."""
    if part.identity is None:
        return
    try:
        now = identity(part.path, part.storage_options)
    except FileNotFoundError:
        now = None
    if now != part.identity:
        from .errors import CaptureError

        def fields(i: Optional[tuple]) -> str:
            if i is None:
                return "no file"
            if i[0] == "local":
                return f"size {i[1]}, mtime_ns {i[2]}, inode {i[3]}"
            return ", ".join([f"size {i[1]}", *(f"{k} {v}" for k, v in i[2:])])

        error = CaptureError(
            f"{part.path}: the file changed since it was partitioned (then {fields(part.identity)};"
            f" now {fields(now)}): run again on a copy that stays put"
        )
        error.file = part.path
        raise error


def _size_and_head(path: str, storage_options: dict) -> tuple[int, bytes, tuple]:
    if _is_remote(path):
        fs, p = _fs(path, storage_options)
        fs.invalidate_cache(p)
        ident = _remote_identity(fs.info(p))
        size = ident[1]
        head = fs.cat_file(p, start=0, end=min(size, _native.DETECT_LEN)) if size else b""
        return size, head, ident
    with open(_local(path), "rb") as f:
        ident = _local_identity(os.fstat(f.fileno()))
        return ident[1], f.read(_native.DETECT_LEN), ident


def expand(paths: str | os.PathLike | Iterable, storage_options: dict) -> list[str]:
    """The captures ``paths`` names (a path, URL or glob pattern, or an
    iterable of them), in order, glob matches sorted."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if not any(c in p for c in "*?["):
            out.append(p)
        elif _is_remote(p):
            fs, pattern = _fs(p, storage_options)
            proto = p.split("://", 1)[0]
            out.extend(f"{proto}://{m}" for m in sorted(fs.glob(pattern)))
        else:
            out.extend(sorted(glob.glob(_local(p))))
    if not out:
        raise FileNotFoundError(f"no capture matches {paths!r}")
    return out


def partitions(
    path: str | os.PathLike, target_bytes: int = 64 << 20, *, storage_options: Optional[dict] = None
) -> list[Partition]:
    """The partitions of the capture at ``path``, of ``target_bytes`` each
    (the last one takes the rest; ``target_bytes`` from
    :data:`MIN_PARTITION_BYTES` to :data:`MAX_PARTITION_BYTES`, else
    ValueError). Reads the size and the first bytes (to tell a compressed
    capture, which is one partition, by the library's own detection),
    never the body."""
    target_bytes = checked_partition_size(target_bytes, "target_bytes")
    path = os.fspath(path)
    options = dict(storage_options or {})
    size, head, ident = _size_and_head(path, options)
    compression, _ = _native.detect_format(head)
    if compression != "none":
        return [Partition(path, 0, 0, size, size, True, options, ident)]
    return [
        Partition(path, i, start, end, size, False, options, ident)
        for i, start, end in _native.partition_ranges(size, target_bytes)
    ]


def partitions_of(
    paths: str | os.PathLike | Iterable, target_bytes: int, storage_options: Optional[dict] = None
) -> list[list[Partition]]:
    """The partitions of every capture ``paths`` names (see :func:`expand`),
    one list per capture, in order."""
    options = dict(storage_options or {})
    target_bytes = checked_partition_size(target_bytes)
    return [partitions(p, target_bytes, storage_options=options) for p in expand(paths, options)]


def _source(part: Partition) -> Any:
    if not _is_remote(part.path):
        return _local(part.path)
    fs, p = _fs(part.path, part.storage_options)
    # No read-ahead cache: only the bytes the partition asks for are read.
    f = fs.open(p, "rb", cache_type="none", block_size=1 << 20)
    return (f, part.path, part.size)


def read(
    part: Partition, entry: Optional[tuple] = None, verified: Optional[tuple] = None
) -> "_native.PartitionRead":
    """Reads one partition (not a ``whole`` one): from a guessed boundary,
    or from ``entry`` (what :func:`verify` asks a recompute to start from).
    ``verified`` = (exit, packets) of the partition's accepted report, with
    its ``entry``: the records are then not walked again where they cannot
    change the state (see :class:`Planned`)."""
    src = _source(part)
    try:
        r = _native.read_partition(src, part.index, part.start, part.end, entry, verified)
    finally:
        if isinstance(src, tuple):
            src[0].close()
    check_identity(part)
    return r


def with_given_entry(report: tuple, entry: tuple) -> tuple:
    """``report`` of a partition read from ``entry`` (a recompute), with
    the entry put back where the worker named it instead of carrying it
    back (a large pcapng section state: see the bindings' partition.rs)."""
    if report[1] is not None and report[1][1] == _native.CONTEXT_GIVEN:
        return (report[0], (report[1][0], entry[1]), *report[2:])
    return report


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
                report = with_given_entry(report, arg)
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
    f = r.chunk().file()
    r.check_unchanged()
    check_identity(part)
    return report, [fn(f)]


def map_whole(fn: Callable[[Any], T], part: Partition) -> list[T]:
    """``fn`` over the chunks of a compressed capture read whole, in order."""
    check_identity(part)
    out = [fn(c.file()) for c in _open_whole(part).chunks()]
    check_identity(part)
    return out


# --- Surveys: exact partition starts and packet numbers, for tables ---------


@dataclass(frozen=True)
class Planned:
    """A partition whose start is verified: read it from ``entry`` (an
    exact boundary; None for a ``whole`` partition) and its packets are
    numbered from ``packets_before + 1``. ``packets``: how many it holds
    (for a partition with the capture's fault, those before the fault).
    ``exit``: where its records end, as verified (None for a ``whole``
    partition and the one with the fault): a pcap partition, or a pcapng
    one without state blocks inside, is then cut there without walking
    its records again, and :func:`read_table` checks their count."""

    part: Partition
    entry: Optional[tuple]
    packets_before: int
    packets: int
    exit: Optional[tuple] = None


class Survey(list):
    """What :func:`survey` returns: one :class:`Planned` per partition with
    packets, in file order; ``recomputed`` counts partitions read again;
    ``error`` is the capture's fault (None for a sound capture), after the
    packets of the partitions listed."""

    recomputed: int = 0
    error: Optional[BaseException] = None


def survey_one(part: Partition, entry: Optional[tuple] = None) -> Any:
    """On a worker: the report of ``part`` (as :func:`read` gives it, the
    packets themselves dropped); for a ``whole`` partition, its packet
    count, or the capture's error."""
    if part.whole:
        from .errors import CaptureError

        check_identity(part)
        try:
            count = _open_whole(part).count()
        except CaptureError as e:
            count = e
        check_identity(part)
        return count
    return read(part, entry).report


def survey(
    parts: list[Partition],
    reports: Iterable[Any],
    recompute: Callable[[Partition, tuple], Any],
) -> Survey:
    """The driver's side of a survey: ``reports`` are :func:`survey_one`'s
    results for ``parts`` in order, ``recompute(part, entry)`` runs
    :func:`survey_one` again. Verifies them (:func:`verify`) and plans
    every partition that holds packets. Never raises the capture's fault:
    it is in ``error``, the plan stops at it."""
    out = Survey()
    if parts and parts[0].whole:
        (result,) = list(reports)
        if isinstance(result, BaseException):
            out.error = result
            result = (result.packet or 1) - 1
        if result:
            out.append(Planned(parts[0], None, 0, int(result)))
        return out
    try:
        def again(p: Partition, e: tuple) -> tuple:
            r = with_given_entry(recompute(p, e), e)
            return r, r

        accepted = verify(parts, ((r, r) for r in reports), again)
    except Exception as e:
        if not hasattr(e, "results"):
            raise
        out.error = e
        accepted = e.results
        e.results = None
    else:
        out.recomputed = accepted.recomputed
    packets_before = 0
    for report in accepted:
        index, entry, exit, packets, fault = report
        if packets:
            trusted = exit if fault is None else None
            out.append(Planned(parts[index], entry, packets_before, packets, trusted))
        packets_before += packets
    return out


def survey_local(parts: list[Partition], workers: Optional[int] = None) -> Survey:
    """A survey on this machine's threads (the native reads release the
    GIL): what a Spark driver runs to plan its scan."""
    from concurrent.futures import ThreadPoolExecutor

    if not parts:
        return Survey()
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        return survey(parts, pool.map(survey_one, parts), survey_one)


def _open_whole(part: Partition) -> Any:
    from .capture import open as open_capture

    if _is_remote(part.path):
        fs, p = _fs(part.path, part.storage_options)
        return open_capture(fs.open(p, "rb"))
    return open_capture(_local(part.path))


def read_table(
    planned: Planned,
    columns: Any = None,
    *,
    data: bool = False,
    ip_as: str = "text",
    decapsulate: Optional[str] = None,
) -> "pyarrow.Table":
    """On a worker: the packet table of a planned partition (frame numbers
    as in the whole capture), built in Rust and handed to pyarrow without
    copying; the options are :meth:`pcap_parallel.Capture.to_arrow`'s.
    Raises if it does not hold the rows the survey counted (the file was
    changed since)."""
    import pyarrow as pa

    from ._table import _column_list

    part = planned.part
    check_identity(part)
    if part.whole:
        try:
            table = _open_whole(part).to_arrow(columns, data=data, ip_as=ip_as, decapsulate=decapsulate)
        except Exception as e:
            # The capture's own fault, where the survey found it: its rows before.
            if getattr(e, "table", None) is None or e.table.num_rows != planned.packets:
                raise
            table = e.table
    else:
        verified = None if planned.exit is None else (planned.exit, planned.packets)
        schema, batches = read(part, planned.entry, verified).table(
            planned.packets_before, _column_list(columns), data, ip_as, decapsulate
        )
        table = pa.Table.from_batches(batches, schema=schema)
    # The rows were built from the file's bytes after the read: still its.
    check_identity(part)
    if table.num_rows != planned.packets:
        raise RuntimeError(
            f"{part.path}: partition {part.index} gave {table.num_rows} rows where"
            f" the survey found {planned.packets} packets (was the file changed?)"
        )
    return table
