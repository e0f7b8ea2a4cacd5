"""The modern API: ``pcap_parallel.open(...)`` and what it returns.

Nothing here parses packets in Python: ``info()``, ``top()``, ``count()``,
``split()``, flow shards and packet tables (``to_arrow()``, ``to_pandas()``,
``to_polars()``, ``write_parquet()``) run in the Rust library on every
core; ``map`` and ``imap`` run *your* function over chunks in worker
processes; and a chunk's packet iterator hands out packets whose ``data``
is a zero-copy view of the capture.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, TypeVar, Union

from . import _native, _progress, _table, _workers
from ._native import Chunk, ChunkLocator, Packet

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    import polars
    import pyarrow

T = TypeVar("T")
Source = Union[str, "os.PathLike[str]", Any]


class Capture:
    """A packet capture opened for parallel processing, with its options.

    Make one with :func:`pcap_parallel.open`. A capture opened from a path
    can be run any number of times (each run reads the file anew); one
    opened from a file object, once.
    """

    def __init__(
        self,
        source: Source,
        *,
        packets: Optional[int] = None,
        bytes: Optional[int] = None,
        chunks: Optional[int] = None,
        workers: Optional[int] = None,
        max_packets: Optional[int] = None,
        filter: Optional[str] = None,
        on_error: str = "stop",
        max_caplen: Optional[int] = None,
        progress: Any = None,
        mp_context: Any = None,
        order: str = "given",
    ) -> None:
        _progress.check(progress)
        ways = [(k, v) for k, v in (("packets", packets), ("bytes", bytes), ("chunks", chunks)) if v is not None]
        if len(ways) > 1:
            raise ValueError("give at most one of packets=, bytes= and chunks=")
        kind, value = ways[0] if ways else ("auto", 0)
        self._opener = _native.Opener(
            source,
            split_kind=kind,
            split_value=int(value),
            workers=workers,
            max_packets=max_packets,
            filter=filter,
            on_error=on_error,
            max_caplen=max_caplen,
            order=order,
        )
        self._progress = progress
        self._mp_context = mp_context

    @property
    def name(self) -> str:
        """The input's name (its path, or the file object's name); of
        several files read as one, the first's."""
        return self._opener.name

    @property
    def paths(self) -> list:
        """The files read as one capture, in the order read (patterns
        expanded; with ``order="time"``, as given: the time order is found
        when a run starts). Empty for a file object."""
        return self._opener.paths

    @property
    def workers(self) -> int:
        """How many chunks are processed at once."""
        return self._opener.workers

    def __repr__(self) -> str:
        return f"<pcap_parallel.Capture {self.name!r} workers={self.workers}>"

    def _callback(self, desc: str) -> Any:
        return _progress.adapt(self._progress, desc)

    # -- in this process -------------------------------------------------

    def chunks(self) -> Iterator[Chunk]:
        """The chunks, in file order, in this process (cut on the library's
        threads, a few at a time). Raises the capture's error, if any, after
        every chunk before the fault."""
        callback = self._callback("chunks")
        stream = _native.ChunkStream(self._opener, "chunks", callback)
        try:
            yield from stream
        finally:
            stream.close()
            _progress.close(callback)

    def packets(self) -> Iterator[Packet]:
        """Every packet, in file order, in this process."""
        for chunk in self.chunks():
            yield from chunk.packets()

    def locators(self) -> Iterator[ChunkLocator]:
        """Every chunk as a picklable :class:`ChunkLocator` (by byte range of
        the file for a plain file; with its records otherwise), for running
        chunks on workers of your own: ``locator.open()`` gives the chunk."""
        stream = _native.ChunkStream(self._opener, "locators", None)
        try:
            yield from stream
        finally:
            stream.close()

    # -- in worker processes ---------------------------------------------

    def imap(self, fn: Callable[[Chunk], T]) -> Iterator[T]:
        """Runs ``fn(chunk)`` on every chunk in worker processes (at most
        ``workers`` at once) and yields the results in file order as they
        are ready. ``fn`` must be picklable (a module-level function).
        At most ``2 * workers + 2`` chunks are in flight (``workers + 1`` for
        compressed input and pipes, whose chunks travel). Ctrl-C stops the
        workers and raises KeyboardInterrupt."""
        callback = self._callback("map")
        pool = _workers.WorkerPool(self.workers, self._mp_context)
        stream = None
        try:
            stream = _native.ChunkStream(self._opener, "for_workers", None)
            seen: dict[int, tuple[int, int, int]] = {}

            def items() -> Iterator[ChunkLocator]:
                for loc in stream:
                    seen[loc.index] = stream.progress()
                    yield loc

            def done(loc: ChunkLocator) -> None:
                if callback is not None:
                    callback(*seen.pop(loc.index))

            # Locators of a plain file are tiny; chunks of a stream carry
            # their records: fewer of those in flight.
            bound = 2 * self.workers + 2 if stream.in_file else self.workers + 1
            yield from _workers.ordered(pool, _workers.call_with_chunk, fn, items(), bound, done)
            pool.close()
        except BaseException:
            pool.abort()
            raise
        finally:
            if stream is not None:
                stream.close()
            _progress.close(callback)

    def map(self, fn: Callable[[Chunk], T]) -> list[T]:
        """Like :meth:`imap`, collected into a list."""
        return list(self.imap(fn))

    # -- whole runs in the library ---------------------------------------

    def count(self) -> int:
        """How many packets (that pass the filter, if any)."""
        return _native.count(self._opener, self._callback("count"))

    def info(self, *, flows: Optional[int] = None, flow_key: str = "five-tuple") -> dict:
        """A capinfos-like summary: the same dict as
        ``pcap-parallel info --json`` prints (its ``error`` is None: a
        broken capture raises instead)."""
        return _native.info(self._opener, flows, flow_key, True, self._callback("info"))

    def top(
        self,
        by: str = "src",
        limit: int = 10,
        *,
        flows: Optional[int] = None,
        flow_key: str = "five-tuple",
    ) -> dict:
        """Packets and bytes per key — ``by`` is src, dst, sport, dport,
        proto or conversation — the ``limit`` busiest first (0: all): the
        same dict as ``pcap-parallel top --json`` prints."""
        return _native.top(self._opener, by, limit, flows, flow_key, self._callback("top"))

    def split(
        self,
        directory: Union[str, "os.PathLike[str]"],
        *,
        prefix: Optional[str] = None,
        compress: Optional[str] = None,
        force: bool = False,
    ) -> list[str]:
        """Writes every chunk as a standalone capture file in ``directory``
        (created if missing), named ``PREFIX-00000000.pcap`` … in file
        order; ``compress`` is None, "gzip" or "zstd". Returns the paths.

        All or nothing, as ``pcap-parallel split`` (the same code): the parts
        are written in a staging directory and put in place once all are
        complete, replacing an earlier split's (``force=True`` is needed for
        that; its parts past the new set go only then). A broken input, a
        failed write or Ctrl-C leaves the directory as it was (one the split
        made is removed). Refused: an input named like a part (``ValueError``:
        a split never replaces or deletes its input), a ``prefix`` that is
        not a plain file name (``ValueError``), another split writing the
        same prefix there at the time, from any process
        (``BlockingIOError``)."""
        paths = _native.split(
            self._opener, os.fspath(directory), prefix, compress, force, self._callback("split")
        )
        return [os.fspath(p) for p in paths]

    # -- packet tables ---------------------------------------------------

    def to_batches(
        self,
        columns: _table.Columns = None,
        *,
        data: bool = False,
        ip_as: str = "text",
        decapsulate: Optional[str] = None,
    ) -> "pyarrow.RecordBatchReader":
        """The packet table, one row per packet, as a streaming
        ``pyarrow.RecordBatchReader``: batches in file order, each built on
        a worker and handed over without copying, at most a few in memory
        at once — for captures whose table is larger than memory, and for
        anything that takes an Arrow stream (``duckdb.sql("select ... from
        reader")``, ``pyarrow.dataset.write_dataset``, polars' scans).

        ``columns``: names (a list, or comma-separated) in the order wanted;
        default: every column but ``data``. ``data=True`` adds the captured
        bytes. ``ip_as="binary"`` stores addresses as 16 bytes instead of
        text. ``decapsulate="gre"`` reports the IP header inside GRE
        tunnels. The capture's own options (``filter``, ``max_packets``,
        ``on_error``, chunking, workers) apply. A broken capture yields the
        rows before the fault, then raises its error (``FormatError`` with
        ``file``, ``offset``, ``packet``)."""
        return _table.to_batches(
            self, columns=columns, data=data, ip_as=ip_as, decapsulate=decapsulate
        )

    def to_arrow(
        self,
        columns: _table.Columns = None,
        *,
        data: bool = False,
        ip_as: str = "text",
        decapsulate: Optional[str] = None,
    ) -> "pyarrow.Table":
        """The packet table as a ``pyarrow.Table`` (one record batch per
        chunk, zero-copy from the Rust buffers); options as in
        :meth:`to_batches`. A broken capture raises its error after reading
        every row before the fault; the exception's ``table`` attribute
        holds those rows."""
        return _table.to_arrow(
            self, columns=columns, data=data, ip_as=ip_as, decapsulate=decapsulate
        )

    def to_pandas(
        self,
        columns: _table.Columns = None,
        *,
        data: bool = False,
        ip_as: str = "text",
        decapsulate: Optional[str] = None,
        **to_pandas: Any,
    ) -> "pandas.DataFrame":
        """The packet table as a pandas DataFrame, through :meth:`to_arrow`
        and ``pyarrow.Table.to_pandas(**to_pandas)`` (pyarrow's defaults:
        integer columns with nulls become floats; pass
        ``types_mapper=pandas.ArrowDtype`` to keep the Arrow types)."""
        return _table.to_pandas(
            self, to_pandas, columns=columns, data=data, ip_as=ip_as, decapsulate=decapsulate
        )

    def to_polars(
        self,
        columns: _table.Columns = None,
        *,
        data: bool = False,
        ip_as: str = "text",
        decapsulate: Optional[str] = None,
    ) -> "polars.DataFrame":
        """The packet table as a polars DataFrame (``polars.from_arrow`` of
        :meth:`to_arrow`: the Arrow buffers are shared, not copied)."""
        return _table.to_polars(
            self, columns=columns, data=data, ip_as=ip_as, decapsulate=decapsulate
        )

    def write_parquet(
        self,
        path: Union[str, "os.PathLike[str]"],
        columns: _table.Columns = None,
        *,
        data: bool = False,
        ip_as: str = "text",
        decapsulate: Optional[str] = None,
        compression: str = "zstd",
        force: bool = False,
    ) -> int:
        """Writes the packet table to a Parquet file, as
        ``pcap-parallel table CAPTURE -o PATH`` does: a row group per chunk,
        encoded on the workers, streamed (never the whole table in memory),
        written under a temporary name and renamed when complete.
        ``compression``: "zstd" (default), "snappy", "lz4", "gzip" or
        "none". Refuses to replace an existing file unless ``force``.
        Returns the number of rows. A broken capture leaves a complete file
        of the rows before the fault, then raises its error."""
        return _table.write(
            self, path, "parquet", compression, force, columns, data, ip_as, decapsulate
        )

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The Arrow PyCapsule stream of the default packet table (see
        :meth:`to_batches`), so that a capture can be handed as it is to
        what reads Arrow streams: ``duckdb.sql("select count(*) from
        cap")``, ``polars.DataFrame(cap)``, ``pyarrow.table(cap)``."""
        return self.to_batches().__arrow_c_stream__(requested_schema)

    def flows(self, shards: int, *, key: str = "five-tuple") -> "Flows":
        """The capture divided into ``shards`` shards by conversation: both
        directions of every flow in the same shard, each shard in file
        order. ``key`` is "five-tuple" or "host-pair"."""
        return Flows(self, shards, key)


class Flows:
    """A capture divided by flow; see :meth:`Capture.flows`."""

    def __init__(self, capture: Capture, shards: int, key: str) -> None:
        if shards < 1:
            raise ValueError("shards must be at least 1")
        self.capture = capture
        self.shards = shards
        self.key = key

    def write(
        self,
        directory: Union[str, "os.PathLike[str]"],
        *,
        prefix: Optional[str] = None,
        compress: Optional[str] = None,
        force: bool = False,
        max_open: int = 32,
    ) -> list[str]:
        """Writes one capture file per shard (``PREFIX-00000000.pcap`` …),
        with at most ``max_open`` files open at once; returns the paths.
        All or nothing, with the same checks as :meth:`Capture.split`."""
        paths = _native.write_flows(
            self.capture._opener,
            self.shards,
            os.fspath(directory),
            prefix,
            self.key,
            compress,
            force,
            max_open,
            self.capture._callback("flows"),
        )
        return [os.fspath(p) for p in paths]

    def map(self, fn: Callable[[Capture], T]) -> list[T]:
        """Runs ``fn(shard)`` for every shard in worker processes, where
        ``shard`` is a :class:`Capture` of that shard's packets (iterate
        ``shard.packets()`` to see its conversations whole, in file order).
        The shards are written to a temporary directory first."""
        cap = self.capture
        with tempfile.TemporaryDirectory(prefix="pcap-parallel-flows-") as tmp:
            paths = self.write(tmp, prefix="shard")
            with _workers.WorkerPool(cap.workers, cap._mp_context) as pool:
                return list(
                    _workers.ordered(
                        pool, _workers.call_with_capture, fn, paths, 2 * cap.workers + 2
                    )
                )


def open(
    source: Source,
    *,
    packets: Optional[int] = None,
    bytes: Optional[int] = None,
    chunks: Optional[int] = None,
    workers: Optional[int] = None,
    max_packets: Optional[int] = None,
    filter: Optional[str] = None,
    on_error: str = "stop",
    max_caplen: Optional[int] = None,
    progress: Any = None,
    mp_context: Any = None,
    order: str = "given",
) -> Capture:
    """Opens a capture for parallel processing.

    ``source`` is a path (``"-"`` for standard input) or a binary file
    object; pcap or pcapng, plain or gzip/bzip2/xz/zstd/lz4 (told by magic
    bytes). A plain file is memory-mapped; everything else is streamed in
    bounded memory. Several files are read as one capture: a list of paths,
    or a glob pattern (``"day-*.pcap.gz"``, its files sorted by name), in
    the order given or, with ``order="time"``, by each file's first packet;
    chunks never span two files, packet numbers count in each file, and the
    packet table gets a ``file`` column.

    Chunking (at most one; default: sized for the worker count):
    ``packets=N`` per chunk, ``bytes=N`` per chunk, ``chunks=K`` in all.
    ``workers``: chunks processed at once (default: the cores available).
    ``max_packets``: stop after that many packets. ``filter``: a tcpdump
    expression (libpcap's semantics). ``on_error``: "stop" (default: the
    error is raised after every packet before it was processed) or "skip"
    (damaged stretches are passed over). ``max_caplen``: the largest
    captured length a pcap record may claim (default 262144).
    ``progress``: True (a tqdm bar), a tqdm bar, or a callable
    ``(bytes_done, bytes_total, packets_done)``. ``mp_context``: the
    multiprocessing context (or start method name) of ``map``'s workers.

    >>> import pcap_parallel
    >>> cap = pcap_parallel.open("samples/sample.pcap")     # doctest: +SKIP
    >>> cap.top(by="src", limit=3)["rows"][0]["key"]        # doctest: +SKIP
    '10.0.0.1'
    """
    return Capture(
        source,
        packets=packets,
        bytes=bytes,
        chunks=chunks,
        workers=workers,
        max_packets=max_packets,
        filter=filter,
        on_error=on_error,
        max_caplen=max_caplen,
        progress=progress,
        mp_context=mp_context,
        order=order,
    )
