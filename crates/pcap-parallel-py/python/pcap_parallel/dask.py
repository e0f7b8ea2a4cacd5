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

:func:`read_pcap` gives the packet tables of captures as one
``dask.dataframe``: the driver first has every partition's boundary
verified on the cluster (a *survey*: the workers walk the records' headers,
nothing is decoded), then each dataframe partition is read from its
verified start and decoded on a worker, its packets numbered as in the
whole capture, in file order.

>>> df = ppd.read_pcap("s3://bucket/2026-11-*.pcap")       # doctest: +SKIP
>>> df.groupby("src_ip").size().nlargest(10).compute()      # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, TypeVar

from . import partition as _parts
from .partition import Partition, Planned

if TYPE_CHECKING:  # pragma: no cover
    import dask.dataframe
    import pandas

T = TypeVar("T")


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
    files = _parts.partitions_of(paths, partition_size, storage_options)
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


class Surveyed(list):
    """What :func:`survey` returns: each capture's :class:`~pcap_parallel.partition.Survey`
    (its verified partitions), in order. ``recomputed``: partitions whose
    guessed start was wrong and were walked again; ``packets``: packets in
    all; ``error``: the first capture's fault (the surveys stop there)."""

    error: Optional[BaseException] = None

    @property
    def recomputed(self) -> int:
        return sum(s.recomputed for s in self)

    @property
    def packets(self) -> int:
        return sum(p.packets for s in self for p in s)


def survey(
    paths: str | os.PathLike | Iterable,
    *,
    partition_size: int = 64 << 20,
    client: Any = None,
    storage_options: Optional[dict] = None,
) -> Surveyed:
    """Verifies the partitions of the captures in ``paths`` on the cluster:
    the workers walk the record headers of every partition at once (nothing
    is decoded) and the driver checks each boundary in file order, having
    the wrong guesses walked again. :func:`read_pcap` does this first; a
    survey can be given to it instead of paths, to read its captures
    several times without walking them again."""
    client = _client(client)
    files = _parts.partitions_of(paths, partition_size, storage_options)
    futures = [[client.submit(_parts.survey_one, part, pure=False) for part in parts] for parts in files]
    out = Surveyed()
    for parts, futs in zip(files, futures):

        def recompute(part: Partition, entry: tuple) -> Any:
            return client.submit(_parts.survey_one, part, entry, pure=False).result()

        # One round trip for the file's reports, not one per partition.
        plan = _parts.survey(parts, client.gather(futs), recompute)
        out.append(plan)
        if plan.error is not None:
            out.error = plan.error
            for later in futures[len(out) :]:
                client.cancel(later)
            break
    return out


def _frame(table: Any, start: int, path: str, path_column: Optional[str]) -> "pandas.DataFrame":
    """A partition's rows as pandas, with Arrow types, indexed from ``start``."""
    import pandas as pd
    import pyarrow as pa

    df = table.to_pandas(types_mapper=pd.ArrowDtype)
    df.index = pd.RangeIndex(start, start + len(df))
    if path_column is not None:
        df[path_column] = pd.Series([path] * len(df), index=df.index, dtype=pd.ArrowDtype(pa.string()))
    return df


def _read_partition(task: tuple[Planned, int], options: dict, path_column: Optional[str]) -> "pandas.DataFrame":
    planned, start = task
    return _frame(_parts.read_table(planned, **options), start, planned.part.path, path_column)


def read_pcap(
    paths: str | os.PathLike | Iterable | Surveyed,
    columns: Optional[Iterable[str] | str] = None,
    *,
    partition_size: int = 256 << 20,
    data: bool = False,
    ip_as: str = "text",
    decapsulate: Optional[str] = None,
    include_path_column: bool | str = False,
    client: Any = None,
    storage_options: Optional[dict] = None,
) -> "dask.dataframe.DataFrame":
    """The packet tables of the captures in ``paths`` (paths, URLs or glob
    patterns, or a :func:`survey` of them) as one lazy ``dask.dataframe``:
    a partition per byte range of ``partition_size`` of each capture (a
    compressed capture is one partition), in file order. The default, 256
    MiB of capture, makes partitions of about 64 MiB in memory (a row takes
    about a quarter of the bytes of its packet without ``data``), near
    what Dask advises; much smaller partitions make Dask's group-bys
    shuffle (it does beyond 15 partitions).

    The columns and options are :meth:`pcap_parallel.Capture.to_arrow`'s;
    the pandas types are ``pandas.ArrowDtype`` of the Arrow types (unsigned
    integers with nulls, timestamps in nanoseconds, exactly as in the
    table). The index is the row's position over all the files (0, 1, ...)
    and the divisions are known, so ``df.loc[a:b]`` reads only the
    partitions it needs; ``frame_number`` numbers each capture's packets as
    tshark does. ``include_path_column``: True adds a string column
    ``path`` naming each row's capture (a string: that name instead), as
    ``dask.dataframe.read_csv`` does.

    Before it returns, the captures are surveyed on the cluster (see
    :func:`survey`), so the dataframe's partitions are read from verified
    starts. A damaged capture raises :class:`pcap_parallel.FormatError`
    (file, byte offset, packet number) here, on the driver; its
    ``dataframe`` attribute is the dataframe of every row before the fault."""
    import dask.dataframe as dd

    from . import _native
    from ._table import _column_list

    plans = paths if isinstance(paths, Surveyed) else survey(
        paths, partition_size=partition_size, client=client, storage_options=storage_options
    )
    path_column = ("path" if include_path_column is True else include_path_column) or None
    options = dict(columns=_column_list(columns), data=data, ip_as=ip_as, decapsulate=decapsulate)
    meta = _frame(_native.table_schema(**options).empty_table(), 0, "", path_column)
    tasks: list[tuple[Planned, int]] = []
    rows = 0
    for plan in plans:
        for planned in plan:
            tasks.append((planned, rows))
            rows += planned.packets
    if tasks:
        df = dd.from_map(
            _read_partition,
            tasks,
            args=(options, path_column),
            meta=meta,
            divisions=tuple(start for _, start in tasks) + (rows - 1,),
            label="read-pcap",
            enforce_metadata=False,
        )
    else:
        df = dd.from_pandas(meta, npartitions=1)
    if plans.error is not None:
        plans.error.dataframe = df
        raise plans.error
    return df
