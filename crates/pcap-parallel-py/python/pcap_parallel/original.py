"""``PCAPParallel``: the API of pcap-parallel 0.1, on the Rust core.

Existing programs run unchanged::

    from pcap_parallel import PCAPParallel

    ps = PCAPParallel("trace.pcap", callback=process_partial_pcap)
    partial_results = ps.split()      # futures, in file order

What differs from 0.1, besides speed: the capture is never loaded into
memory (plain files are memory-mapped, and each worker reads its own chunk
from the file: the parent sends it only the file name, the byte range and
the header); compressed files and pipes are streamed, a bounded number of
chunks in flight; no serial scan of the file precedes the work; pcapng
works (chunks are pcapng); zstd and lz4 work; ``pcap_filter`` works, with
tcpdump's semantics. A capture damaged after its header (cut short, a
record claiming an impossible length) gives every complete packet before
the fault, as 0.1 did, and a :class:`pcap_parallel.CaptureWarning` naming
the file, the byte offset and the packet (``strict=True``: the
:class:`pcap_parallel.FormatError` instead). CHANGELOG.md lists every
difference.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import warnings
from concurrent.futures import Executor, Future
from logging import debug, info
from typing import Any, BinaryIO, Callable, List, Optional, Union

from . import _native, _workers
from .errors import CaptureError, CaptureWarning, DecompressError, FormatError

_SKIP = 1 << 20


class _SeekableDecompressed(io.RawIOBase):
    """The decompressed bytes of a file, as a seekable raw binary stream:
    seeking forward reads and drops; seeking backward opens the file again
    and reads forward (what the standard library's GzipFile does)."""

    def __init__(self, filename: str) -> None:
        super().__init__()
        self.name = filename
        self._reader = _native.DecompressedReader(filename)
        #: none, gzip, bzip2, xz, zstd or lz4
        self.compression = self._reader.compression
        self._pos = 0
        self._size: Optional[int] = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._reader.read(len(view))
        view[: len(data)] = data
        self._pos += len(data)
        if not data and self._size is None:
            self._size = self._pos
        return len(data)

    def _skip(self, n: int) -> None:
        while n > 0:
            data = self._reader.read(min(n, _SKIP))
            if not data:
                self._size = self._pos
                return
            self._pos += len(data)
            n -= len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()
        if whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            if self._size is None:
                self._skip(1 << 62)
            assert self._size is not None
            target = self._size + offset
        elif whence == io.SEEK_SET:
            target = offset
        else:
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        if target < 0:
            raise OSError(22, "Invalid argument: negative seek position")
        if target < self._pos:
            self._reader.close()
            self._reader = _native.DecompressedReader(self.name)
            self._pos = 0
        self._skip(target - self._pos)
        # Past the end, as a file: the position is where asked.
        self._pos = target
        return target

    def tell(self) -> int:
        self._checkClosed()
        return self._pos

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
        super().close()


def _compression_of(filename: str) -> str:
    reader = _native.DecompressedReader(filename)
    try:
        return reader.compression
    finally:
        reader.close()


class PCAPParallel:
    """Splits a capture into chunks and hands each to ``callback`` in a
    worker process (pcap-parallel 0.1's class, same arguments).

    ``pcap_file``: a path (str, bytes or os.PathLike) or a binary file
    object. ``callback``: a picklable function taking an ``io.BytesIO``
    that holds one chunk as a standalone capture (pcap for pcap input,
    pcapng for pcapng input). ``split_size``: packets per chunk (0 or None:
    sized for the worker count; negative: its absolute value, as 0.1's
    ``packets_read % split_size`` had it). ``maximum_count``: stop after that
    many packets (0 or negative: all, as dpkt's ``dispatch`` had it).
    ``pcap_filter``: a tcpdump expression; only matching packets are in the
    chunks. ``maximum_cores``: worker processes (default: the cores).

    ``strict`` (not in 0.1): a capture damaged after its header raises its
    :class:`pcap_parallel.FormatError` (or ``DecompressError``) from
    ``split()``, with the futures of the chunks before the fault in its
    ``futures``, instead of warning (:class:`pcap_parallel.CaptureWarning`)
    and returning them.
    """

    def __init__(
        self,
        pcap_file: Union[str, bytes, "os.PathLike[str]", BinaryIO],
        callback: Optional[Callable[[io.BytesIO], Any]] = None,
        split_size: Optional[int] = 0,
        maximum_count: Optional[int] = 0,
        pcap_filter: Optional[str] = None,
        maximum_cores: Optional[int] = None,
        *,
        strict: bool = False,
    ) -> None:
        if isinstance(pcap_file, bytes):
            pcap_file = os.fsdecode(pcap_file)
        self.pcap_file = pcap_file
        self.callback = callback
        self.split_size = split_size
        self.maximum_count = maximum_count
        self.pcap_filter = pcap_filter
        self.maximum_cores = maximum_cores
        self.strict = strict
        # 0.1's state, kept for subclasses: ``header`` (the first 24 bytes of
        # the decompressed capture, set by split() for a regular file),
        # ``packets_read`` (packets split, set by split()), ``results`` (what
        # split() returned).
        # ``buffer``, ``dpkt_data`` and ``our_data`` held 0.1's serial scan,
        # which the drop-in does not do: they stay None.
        self.header: Optional[bytes] = None
        self.buffer: Optional[bytes] = None
        self.packets_read: int = 0
        self.dpkt_data: Any = None
        self.our_data: Any = None
        self.results: List[Any] = []
        # A pool a subclass set before calling this __init__ stays.
        self.__dict__.setdefault("_process_pool", None)
        if isinstance(pcap_file, (str, os.PathLike)):
            path = os.fspath(pcap_file)
            if path != "-" and not os.path.exists(path):
                raise ValueError(f"failed to find pcap file '{path}'")
        elif hasattr(pcap_file, "read"):
            _check_binary(pcap_file)
        else:
            raise TypeError(
                "pcap_file must be a path (str, bytes or os.PathLike) or a binary file object, "
                f"not {type(pcap_file).__name__}"
            )

    # -- 0.1's helpers -----------------------------------------------------

    @property
    def process_pool(self) -> Executor:
        """The executor the callbacks run on (0.1 made a ProcessPoolExecutor
        in ``__init__``). Made when first asked for; a subclass may set its
        own. When there is one, ``split()`` submits to it and shuts it down
        at the end, as 0.1 did; otherwise ``split()`` runs a pool of its own
        (``maximum_cores`` processes)."""
        if self._process_pool is None:
            self._process_pool = _workers.WorkerPool(self._workers()).executor
        return self._process_pool

    @process_pool.setter
    def process_pool(self, pool: Executor) -> None:
        self._process_pool = pool

    def set_split_size(self) -> Optional[int]:
        """0.1's packets per chunk when none was given: ``maximum_count``
        over the cores, or the file size over 1,200 (plain) or 5,000
        (compressed) bytes per packet over the cores, at least 1,000. Sets
        ``split_size``. ``split()`` calls it only when a subclass overrides
        it (otherwise an unset ``split_size`` sizes chunks for the workers)."""
        if self.split_size:
            info(f"split size already set to {self.split_size}")
            return self.split_size
        cores = multiprocessing.cpu_count()
        if self.maximum_cores and cores > self.maximum_cores:
            cores = self.maximum_cores
        if self.maximum_count and self.maximum_count > 0:
            self.split_size = int(self.maximum_count / cores)
        elif isinstance(self.pcap_file, (str, os.PathLike)) and os.fspath(self.pcap_file) != "-":
            path = os.fspath(self.pcap_file)
            divide_size = 1200 if _compression_of(path) == "none" else 5000
            self.split_size = int(os.stat(path).st_size / divide_size / cores)
        self.split_size = max(self.split_size or 0, 1000)
        debug(f"setting PCAPSplitter split size to {self.split_size} for {cores} cores")
        return None

    @staticmethod
    def open_maybe_compressed(filename: Union[str, bytes, "os.PathLike[str]"]) -> BinaryIO:
        """Opens a capture file for reading its decompressed bytes: gzip,
        bzip2, xz, zstd or lz4, told by magic bytes, or plain. As in 0.1 a
        plain file is ``open(filename, "rb")`` and gzip, bzip2 and xz are the
        standard library's ``GzipFile``, ``BZ2File`` and ``LZMAFile``; zstd
        and lz4 (new) are an ``io.BufferedReader``. Every one seeks and
        tells, forward and backward (backward in a compressed file reads it
        again from its start)."""
        filename = os.fsdecode(filename) if isinstance(filename, bytes) else os.fspath(filename)
        compression = _compression_of(filename)
        if compression == "none":
            return open(filename, "rb")
        if compression == "gzip":
            import gzip

            return gzip.open(filename, "rb")  # type: ignore[return-value]
        if compression == "bzip2":
            import bz2

            handle = bz2.open(filename, "rb")
            setattr(handle, "name", filename)
            return handle  # type: ignore[return-value]
        if compression == "xz":
            import lzma

            return lzma.open(filename, "rb")  # type: ignore[return-value]
        return io.BufferedReader(_SeekableDecompressed(filename), 1 << 20)  # type: ignore[return-value]

    def save_packets(self) -> None:
        """0.1 saved each chunk from its serial dpkt scan here; the drop-in
        cuts chunks in Rust and never calls it."""
        raise NotImplementedError(_NO_SERIAL_SCAN)

    def dpkt_callback(self, timestamp: float, packet: bytes) -> None:
        """0.1 counted each packet of its serial dpkt scan here; the drop-in
        cuts chunks in Rust and never calls it."""
        raise NotImplementedError(_NO_SERIAL_SCAN)

    # -- splitting ---------------------------------------------------------

    def _opener(self) -> Any:
        split_size = abs(int(self.split_size or 0))
        maximum_count = int(self.maximum_count or 0)
        return _native.Opener(
            self.pcap_file,
            split_kind="packets" if split_size else "auto",
            split_value=split_size,
            workers=self._workers(),
            max_packets=maximum_count if maximum_count > 0 else None,
            filter=self.pcap_filter,
        )

    def _workers(self) -> int:
        cores = os.cpu_count() or 1
        if self.maximum_cores:
            cores = min(cores, int(self.maximum_cores))
        return max(1, cores)

    def _check_overrides(self) -> None:
        for name in ("dpkt_callback", "save_packets"):
            if getattr(type(self), name) is not getattr(PCAPParallel, name):
                raise NotImplementedError(f"{type(self).__name__}.{name}: {_NO_SERIAL_SCAN}")
        if type(self).set_split_size is not PCAPParallel.set_split_size:
            self.set_split_size()

    def _read_header(self) -> None:
        # Only from a regular file: a pipe's bytes are read once, by the split.
        if isinstance(self.pcap_file, (str, os.PathLike)) and os.path.isfile(self.pcap_file):
            try:
                with self.open_maybe_compressed(self.pcap_file) as f:
                    self.header = f.read(24)
            except (OSError, EOFError, ValueError):
                self.header = None

    def split(self) -> Union[List[io.BytesIO], List[Future]]:
        """Cuts the capture and runs the callback on every chunk; returns,
        in file order, the futures of the callbacks (all finished, as in
        0.1), or without a callback the chunks as ``io.BytesIO``.

        A capture damaged after its header gives the chunks (or futures) of
        every packet before the fault and warns with a
        :class:`pcap_parallel.CaptureWarning` (``file``, ``offset``,
        ``packet``); with ``strict=True`` it raises the
        :class:`pcap_parallel.FormatError` (or ``DecompressError``) instead,
        the futures of the chunks before the fault in its ``futures``. An
        input that is not a capture, or whose header is broken, raises a
        :class:`pcap_parallel.CaptureError` (a ValueError), as 0.1 raised
        ValueError."""
        self._check_overrides()
        self._read_header()
        self.packets_read = 0
        opener = self._opener()
        if self.callback is None:
            results: list = []
            self.results = results
            stream = _native.ChunkStream(opener, "chunks", None)
            error = None
            try:
                for chunk in stream:
                    results.append(chunk.file())
                    self.packets_read += chunk.packet_count
            except CaptureError as e:
                error = e
            finally:
                stream.close()
            self._damage(error, results)
            return results
        futures, error = self._run_callbacks(opener)
        self._damage(error, futures)
        return futures

    def _damage(self, error: Optional[CaptureError], results: list) -> None:
        """Raises ``error`` (strict mode, or an error that is not damage
        after the header), or warns about it."""
        if error is None:
            return
        error.futures = results
        damage = isinstance(error, (FormatError, DecompressError)) and (error.offset or 0) > 0
        if self.strict or not damage:
            raise error
        chunks = "chunk" if len(results) == 1 else "chunks"
        packets = "packet" if self.packets_read == 1 else "packets"
        warning = CaptureWarning(
            f"{error}; split() returns the {len(results)} {chunks} of the "
            f"{self.packets_read} complete {packets} before it",
            file=error.file,
            offset=error.offset,
            packet=error.packet,
        )
        warning.error = error
        # stacklevel 3: the line that called split().
        warnings.warn(warning, stacklevel=3)

    def _run_callbacks(self, opener: Any) -> tuple[List[Future], Optional[CaptureError]]:
        own = self._process_pool is None
        pool: Optional[_workers.WorkerPool] = None
        if own:
            workers = self._workers()
            pool = _workers.WorkerPool(workers)
            executor: Executor = pool.executor
        else:
            # 0.1 submitted to self.process_pool and shut it down at the end.
            executor = self._process_pool
            workers = getattr(executor, "_max_workers", None) or self._workers()
            # A fork-based pool forks its workers now, before the library
            # starts threads in this process.
            executor.submit(os.getpid).result()
        results: List[Future] = []
        self.results = results
        stream = None
        error: Optional[CaptureError] = None
        try:
            stream = _native.ChunkStream(opener, "for_workers", None)
            # Locators of a plain file are tiny; records of a stream are
            # not: then at most workers + 1 chunks are in flight.
            bound = None if stream.in_file else workers + 1
            running: set[Future] = set()
            try:
                for locator in stream:
                    future = executor.submit(_workers.call_with_bytesio, self.callback, locator)
                    results.append(future)
                    self.packets_read += locator.packet_count
                    if bound is not None:
                        running.add(future)
                        running = _workers.wait_below(running, bound)
            except CaptureError as e:
                error = e
            stream.close()
            executor.shutdown(wait=True)
        except BaseException:
            # Ctrl-C (or anything else): stop the workers now.
            if pool is not None:
                pool.abort()
            else:
                executor.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            if stream is not None:
                stream.close()
            if not own:
                self._process_pool = None
        return results, error


_NO_SERIAL_SCAN = (
    "pcap-parallel 0.1's serial dpkt scan (dpkt_callback, save_packets) is not part of the "
    "drop-in: chunks are cut in Rust and no callback runs per packet in the parent; process "
    "packets in the callback instead"
)


def _check_binary(f: Any) -> None:
    """A file object opened in text mode is refused with a clear error."""
    text = isinstance(f, io.TextIOBase)
    if not text:
        mode = getattr(f, "mode", None)
        text = isinstance(mode, str) and "b" not in mode
    if not text:
        try:
            text = isinstance(f.read(0), str)
        except Exception:
            text = False
    if text:
        name = getattr(f, "name", "the file object")
        raise TypeError(
            f"{name}: a capture must be read in binary mode: open it with open(path, 'rb'), "
            "or pass its path"
        )
