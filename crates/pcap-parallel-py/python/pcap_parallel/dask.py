"""pcap-parallel on a Dask cluster.

>>> from distributed import Client                          # doctest: +SKIP
>>> from pcap_parallel import dask as ppd                   # doctest: +SKIP
>>> client = Client("scheduler:8786")                       # doctest: +SKIP
>>> sizes = ppd.map_chunks(lambda f: len(f.getvalue()), ["s3://bucket/*.pcap"])  # doctest: +SKIP

:func:`map_chunks` is ``PCAPParallel``'s contract on a cluster: your
function receives each partition of each capture as a standalone capture in
an ``io.BytesIO``, and the results come back in file order. The partitions
are byte ranges computed from the files' sizes (see
:mod:`pcap_parallel.partition`): a huge file and many files both spread
over every worker. Each worker finds its partition's first packet
boundary itself; the driver checks, in file order, that each partition
starts where the one before it ended and has the partitions whose guess was
wrong read again, so the result is exactly the sequential reading.
"""

from __future__ import annotations

import glob
import os
from typing import Any, Callable, Iterable, Optional, TypeVar

from . import partition as _parts
from .partition import Partition

T = TypeVar("T")


def _expand(paths: str | os.PathLike | Iterable, storage_options: dict) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if not any(c in p for c in "*?["):
            out.append(p)
        elif _parts._is_remote(p):
            fs, pattern = _parts._fs(p, storage_options)
            proto = p.split("://", 1)[0]
            out.extend(f"{proto}://{m}" for m in sorted(fs.glob(pattern)))
        else:
            out.extend(sorted(glob.glob(_parts._local(p))))
    if not out:
        raise FileNotFoundError(f"no capture matches {paths!r}")
    return out


def _client(client: Any) -> Any:
    if client is not None:
        return client
    from distributed import get_client

    return get_client()


def _run_whole(fn: Callable, part: Partition) -> list:
    return _parts.map_whole(fn, part)


def map_chunks(
    fn: Callable[[Any], T],
    paths: str | os.PathLike | Iterable,
    *,
    partition_size: int = 64 << 20,
    client: Any = None,
    storage_options: Optional[dict] = None,
) -> list[T]:
    """``fn(io.BytesIO)`` over every partition of every capture in ``paths``
    (paths, URLs or glob patterns), on the Dask cluster of ``client`` (the
    current one by default). Returns the results in file order: one per
    partition holding packets (a compressed capture gives one per chunk of
    the capture, read whole by one worker). The driver verifies the
    partitions and has the wrong guesses recomputed on the cluster; the
    attribute ``recomputed`` of the returned list counts them.

    A capture damaged in the middle raises :class:`pcap_parallel.FormatError`
    (file, byte offset, packet number) after every partition before the
    fault; its ``results`` holds their results (the partition holding the
    fault included, for its packets before it)."""
    client = _client(client)
    options = dict(storage_options or {})
    files = [_parts.partitions(p, partition_size, storage_options=options) for p in _expand(paths, options)]
    futures = []
    for parts in files:
        if parts[0].whole:
            futures.append(client.submit(_run_whole, fn, parts[0], pure=False))
        else:
            futures.append([client.submit(_parts.map_partitions, fn, part, pure=False) for part in parts])
    results: _parts.Verified = _parts.Verified()
    results.first_packet_numbers = []
    for parts, fut in zip(files, futures):
        if parts[0].whole:
            results.extend(fut.result())
            continue

        def recompute(part: Partition, entry: tuple) -> tuple:
            return client.submit(_parts.map_partitions, fn, part, entry, pure=False).result()

        def reports(fut: list = fut) -> Iterable[tuple]:
            for f in fut:
                yield f.result()

        try:
            verified = _parts.verify(parts, reports(), recompute)
        except Exception as e:
            if hasattr(e, "results"):
                e.results = list(results) + [v for vals in e.results for v in vals]
            for f in fut:
                f.cancel()
            raise
        results.recomputed += verified.recomputed
        for vals in verified:
            results.extend(vals)
    return results
