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
tcpdump's semantics; and a broken capture raises an error that names the
file, the byte offset and the packet, once the chunks before it are done.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import Future
from typing import Any, BinaryIO, Callable, List, Optional, Union

from . import _native, _workers
from .errors import CaptureError


class _DecompressedRaw(io.RawIOBase):
    """The decompressed bytes of a file, as a raw binary stream."""

    def __init__(self, filename: str) -> None:
        super().__init__()
        self._reader = _native.DecompressedReader(filename)
        self.name = filename
        #: none, gzip, bzip2, xz, zstd or lz4
        self.compression = self._reader.compression

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._reader.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
        super().close()


class PCAPParallel:
    """Splits a capture into chunks and hands each to ``callback`` in a
    worker process (pcap-parallel 0.1's class, same arguments).

    ``pcap_file``: a path (or a binary file object). ``callback``: a
    picklable function taking an ``io.BytesIO`` that holds one chunk as a
    standalone capture (pcap for pcap input, pcapng for pcapng input).
    ``split_size``: packets per chunk (0: sized for the worker count).
    ``maximum_count``: stop after that many packets (0: all).
    ``pcap_filter``: a tcpdump expression; only matching packets are in
    the chunks. ``maximum_cores``: worker processes (default: the cores).
    """

    def __init__(
        self,
        pcap_file: Union[str, "os.PathLike[str]", BinaryIO],
        callback: Optional[Callable[[io.BytesIO], Any]] = None,
        split_size: int = 0,
        maximum_count: int = 0,
        pcap_filter: Optional[str] = None,
        maximum_cores: Optional[int] = None,
    ) -> None:
        self.pcap_file = pcap_file
        self.callback = callback
        self.split_size = split_size
        self.maximum_count = maximum_count
        self.pcap_filter = pcap_filter
        self.maximum_cores = maximum_cores
        self.results: List[Any] = []
        if isinstance(pcap_file, (str, bytes, os.PathLike)):
            path = os.fsdecode(pcap_file)
            if path != "-" and not os.path.exists(path):
                raise ValueError(f"failed to find pcap file '{path}'")

    @staticmethod
    def open_maybe_compressed(filename: Union[str, "os.PathLike[str]"]) -> BinaryIO:
        """Opens a capture file for reading its decompressed bytes: gzip,
        bzip2, xz, zstd or lz4, told by magic bytes, or plain."""
        return io.BufferedReader(_DecompressedRaw(os.fspath(filename)), 1 << 20)

    def _opener(self) -> Any:
        return _native.Opener(
            self.pcap_file,
            split_kind="packets" if self.split_size else "auto",
            split_value=int(self.split_size or 0),
            workers=self._workers(),
            max_packets=self.maximum_count or None,
            filter=self.pcap_filter,
        )

    def _workers(self) -> int:
        cores = os.cpu_count() or 1
        if self.maximum_cores:
            cores = min(cores, int(self.maximum_cores))
        return max(1, cores)

    def split(self) -> Union[List[io.BytesIO], List[Future]]:
        """Cuts the capture and runs the callback on every chunk; returns,
        in file order, the futures of the callbacks (all finished, as in
        0.1), or without a callback the chunks as ``io.BytesIO``.

        A broken capture raises :class:`pcap_parallel.errors.CaptureError`
        (with ``file``, ``offset``, ``packet``) after the chunks before the
        fault are done; its ``futures`` attribute holds their futures."""
        opener = self._opener()
        if self.callback is None:
            stream = _native.ChunkStream(opener, "chunks", None)
            try:
                self.results = [chunk.file() for chunk in stream]
            finally:
                stream.close()
            return self.results
        return self._run_callbacks(opener)

    def _run_callbacks(self, opener: Any) -> List[Future]:
        workers = self._workers()
        pool = _workers.WorkerPool(workers)
        results: List[Future] = []
        self.results = results
        stream = None
        try:
            stream = _native.ChunkStream(opener, "for_workers", None)
            # Locators of a plain file are tiny; records of a stream are
            # not: then at most workers + 1 chunks are in flight.
            bound = None if stream.in_file else workers + 1
            running: set[Future] = set()
            for locator in stream:
                future = pool.submit(_workers.call_with_bytesio, self.callback, locator)
                results.append(future)
                if bound is not None:
                    running.add(future)
                    running = _workers.wait_below(running, bound)
            stream.close()
            pool.close()
        except CaptureError as e:
            pool.close()
            e.futures = results
            raise
        except BaseException:
            # Ctrl-C (or anything else): stop the workers now.
            pool.abort()
            raise
        finally:
            if stream is not None:
                stream.close()
        return results
