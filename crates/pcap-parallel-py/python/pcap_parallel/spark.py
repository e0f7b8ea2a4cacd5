"""Packet tables on Spark: a Spark 4 Python data source named ``pcap``.

>>> import pcap_parallel.spark                              # doctest: +SKIP
>>> pcap_parallel.spark.register(spark)                     # doctest: +SKIP
>>> df = spark.read.format("pcap").load("/data/2026-11-*.pcap")  # doctest: +SKIP
>>> df.groupBy("src_ip").count().orderBy("count", ascending=False).show()  # doctest: +SKIP

Each capture is cut into byte ranges (``partitionSize``, 128 MiB by
default as Spark's ``spark.sql.files.maxPartitionBytes``; a compressed
capture is one range). The ranges are first *surveyed*: the record headers
of every range walked from a guessed boundary, each boundary verified in
file order (the ranges whose guess was wrong are walked again), exactly as
``pcap_parallel.dask.survey`` does on a Dask cluster. By default the data
source does this on the driver's cores when Spark plans the scan, which
reads every range on the driver; for captures larger than the driver
should read, :func:`survey` runs it as a Spark job on the executors (one
task per range) and its plan is given to the scan:

>>> plan = pcap_parallel.spark.survey(spark, "s3://bucket/day-*.pcap")  # doctest: +SKIP
>>> df = spark.read.format("pcap").option("survey", plan).load()       # doctest: +SKIP

Each Spark task then reads its range from the verified start to the
verified end and decodes it in Rust into Arrow record batches, which Spark
takes as they are.

The columns are the packet table's (``pcap-parallel table``, see the
docs/tables.md) in Spark's types, which have no unsigned integers and keep
microseconds: uint8 and uint16 widen to ``short`` and ``int``, uint32 to
``long``; ``frame_number`` is a ``long``; ``flow_id`` is the same 64 bits
as a signed ``long`` (equal ids stay equal); ``ts`` is a ``timestamp``
(microseconds; ``.option("ts", "nanoseconds")`` gives a ``long`` of
nanoseconds since 1970 instead); IPs as 16-byte binary are ``binary``.

Options (``spark.read.format("pcap").option(name, value)``; names are
case-insensitive):

* ``partitionSize``: bytes per range (default 134217728);
* ``columns``: a comma-separated list of columns (default: all but ``data``);
* ``data``: "true" adds the packet bytes;
* ``ipAs``: "text" (default) or "binary"; ``decapsulate``: "gre";
* ``includePathColumn``: "true" adds a string column ``path``;
* ``mode``: "FAILFAST" (default: a damaged capture fails the query with its
  error: file, byte offset and packet number) or "PERMISSIVE" (the rows
  before the fault, and a warning);
* ``survey``: a plan from :func:`survey` (its paths, range size, storage
  options and mode are the plan's).

``load`` takes a path, a glob pattern, or several separated by commas;
paths may be fsspec URLs (``s3://...``) read by ranges
(``storage_options``: ``.option("storage_options", json.dumps({...}))``).
"""

from __future__ import annotations

import base64
import json
import os
import warnings
import zlib
from typing import Any, Iterable, Iterator, Optional

from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
from pyspark.sql.types import (
    BinaryType,
    DataType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from . import _native
from . import partition as _parts
from .partition import Partition, Planned, Survey

#: Default bytes per range.
PARTITION_SIZE = 128 << 20


def register(spark: Any) -> None:
    """Makes ``spark.read.format("pcap")`` available in this session."""
    spark.dataSource.register(PcapDataSource)


class _Options:
    """The data source's options, parsed once."""

    def __init__(self, options: dict) -> None:
        o = {k.lower(): v for k, v in options.items()}
        self.paths = [p.strip() for p in (o.get("path") or o.get("paths") or "").split(",") if p.strip()]
        self.partition_size = _parts.checked_partition_size(o.get("partitionsize", PARTITION_SIZE), "partitionSize")
        columns = o.get("columns")
        self.table = dict(
            columns=[c.strip() for c in columns.split(",") if c.strip()] if columns else None,
            data=_flag(o.get("data"), "data"),
            ip_as=o.get("ipas", "text"),
            decapsulate=o.get("decapsulate") or None,
        )
        self.path_column = "path" if _flag(o.get("includepathcolumn"), "includePathColumn") else None
        self.ts_nanos = _ts_nanos(o.get("ts", "timestamp"))
        self.permissive = _permissive(o.get("mode", "FAILFAST"))
        self.storage_options = json.loads(o.get("storage_options", "{}"))
        self.survey = o.get("survey")

    def arrow_schema(self) -> Any:
        """The Arrow schema the batches are cast to (Spark's types)."""
        import pyarrow as pa

        fields = [pa.field(f.name, _spark_arrow(f.type, self.ts_nanos)) for f in _native.table_schema(**self.table)]
        if self.path_column:
            fields.append(pa.field(self.path_column, pa.string()))
        return pa.schema(fields)


def _permissive(mode: str) -> bool:
    """Whether ``mode`` (FAILFAST or PERMISSIVE, any case) is PERMISSIVE."""
    mode = mode.upper()
    if mode not in ("FAILFAST", "PERMISSIVE"):
        raise ValueError(f"mode must be FAILFAST or PERMISSIVE, not {mode!r}")
    return mode == "PERMISSIVE"


def _flag(value: Optional[str], name: str) -> bool:
    """A true/false option (absent: false); anything else is an error, not
    a silent false."""
    if value is None:
        return False
    v = str(value).strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no", ""):
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


def _ts_nanos(value: str) -> bool:
    """Whether the ``ts`` option asks for nanoseconds (a long)."""
    v = str(value).strip().lower()
    if v in ("nanoseconds", "ns", "long"):
        return True
    if v in ("timestamp", "microseconds", "us"):
        return False
    raise ValueError(f"ts must be 'timestamp' or 'nanoseconds', not {value!r}")


def _spark_arrow(t: Any, ts_nanos: bool) -> Any:
    """The Arrow type Spark takes for a column of the table's type ``t``."""
    import pyarrow as pa

    if pa.types.is_timestamp(t):
        return pa.int64() if ts_nanos else pa.timestamp("us", tz="UTC")
    return {
        pa.uint8(): pa.int16(),
        pa.uint16(): pa.int32(),
        pa.uint32(): pa.int64(),
        pa.uint64(): pa.int64(),
    }.get(t, pa.binary() if pa.types.is_fixed_size_binary(t) else t)


def _spark_type(t: Any) -> DataType:
    import pyarrow as pa

    if pa.types.is_timestamp(t):
        return TimestampType()
    if pa.types.is_string(t):
        return StringType()
    if pa.types.is_binary(t):
        return BinaryType()
    return {pa.int16(): ShortType(), pa.int32(): IntegerType(), pa.int64(): LongType()}[t]


def _cast(batch: Any, schema: Any) -> Any:
    """``batch`` in Spark's types: integers widened, uint64 reinterpreted,
    nanoseconds truncated to microseconds (or kept as integers)."""
    import pyarrow as pa

    arrays = []
    for array, field in zip(batch.columns, schema):
        if pa.types.is_timestamp(array.type) and pa.types.is_integer(field.type):
            array = array.cast(pa.int64())
        arrays.append(array.cast(field.type, safe=False))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class PcapPartition(InputPartition):
    """One verified byte range of one capture: a Spark task."""

    def __init__(self, planned: Planned) -> None:
        super().__init__(planned)
        self.planned = planned


class PcapDataSource(DataSource):
    """``spark.read.format("pcap")``: captures as packet tables; see the
    module's documentation."""

    @classmethod
    def name(cls) -> str:
        return "pcap"

    def schema(self) -> StructType:
        return StructType(
            [StructField(f.name, _spark_type(f.type), True) for f in _Options(self.options).arrow_schema()]
        )

    def reader(self, schema: StructType) -> "PcapReader":
        return PcapReader(_Options(self.options))


class PcapReader(DataSourceReader):
    """Plans the scan (the survey) and reads each range."""

    def __init__(self, options: _Options) -> None:
        self.options = options
        self.arrow_schema = options.arrow_schema()

    def partitions(self) -> list[PcapPartition]:
        o = self.options
        if o.survey is not None:
            paths, planned = _decode(o.survey)
            if o.paths and _parts.expand(o.paths, o.storage_options) != paths:
                raise ValueError("the paths given to load() are not those of the survey")
        elif not o.paths:
            raise ValueError('the pcap data source needs a path: spark.read.format("pcap").load(PATH)')
        else:
            files = _parts.partitions_of(o.paths, o.partition_size, o.storage_options)
            planned = _accept((_parts.survey_local(parts) for parts in files), o.permissive)
        return [PcapPartition(p) for p in planned]

    def read(self, partition: PcapPartition) -> Iterator[Any]:
        planned = partition.planned
        table = _parts.read_table(planned, **self.options.table)
        if self.options.path_column:
            table = table.append_column(self.options.path_column, _path_array(planned.part.path, table.num_rows))
        for batch in table.to_batches():
            yield _cast(batch, self.arrow_schema)


def _path_array(path: str, rows: int) -> Any:
    import pyarrow as pa

    return pa.array([path] * rows, pa.string())


def _accept(plans: Iterable[Survey], permissive: bool) -> list[Planned]:
    """The ranges to read of the captures' surveys, in order, up to the
    first fault: raised, or (``permissive``) warned about."""
    out: list[Planned] = []
    for plan in plans:
        out.extend(plan)
        if plan.error is not None:
            if not permissive:
                raise plan.error
            warnings.warn(f"pcap: {plan.error} (the rows before it are read)", stacklevel=2)
            break
    return out


def survey(
    spark: Any,
    paths: str | os.PathLike | Iterable,
    *,
    partition_size: int = PARTITION_SIZE,
    storage_options: Optional[dict] = None,
    mode: str = "FAILFAST",
) -> str:
    """Surveys the captures ``paths`` names (paths, URLs, glob patterns) as
    a Spark job on the executors, a task per range (a compressed capture is
    one range, counted whole), and verifies the reports here on the driver
    (a range whose guess was wrong is walked again here: only that range is
    read). Returns the plan, a string for ``.option("survey", plan)``.

    ``mode`` "FAILFAST" raises a damaged capture's error here (file, byte
    offset, packet); "PERMISSIVE" warns, and the plan ends with the rows
    before the fault. Needs a classic Spark session (its SparkContext)."""
    permissive = _permissive(mode)
    options = dict(storage_options or {})
    files = _parts.partitions_of(paths, partition_size, options)
    flat = [p for parts in files for p in parts]
    reports = spark.sparkContext.parallelize(flat, len(flat)).map(_parts.survey_one).collect()
    given = iter(reports)

    def plans() -> Iterator[Survey]:
        for parts in files:
            mine = [next(given) for _ in parts]
            yield _parts.survey(parts, mine, _parts.survey_one)

    planned = _accept(plans(), permissive)
    return _encode([parts[0].path for parts in files], planned, options)


def _encode(paths: list[str], planned: list[Planned], storage_options: dict) -> str:
    """A plan as a string (JSON, compressed, base64)."""

    def boundary(b: Optional[tuple]) -> Optional[list]:
        return None if b is None else [b[0], base64.b64encode(b[1]).decode()]

    number = {path: i for i, path in enumerate(paths)}
    ranges = [
        [number[p.part.path], p.part.index, p.part.start, p.part.end, p.part.size, p.part.whole,
         boundary(p.entry), p.packets_before, p.packets, boundary(p.exit)]
        for p in planned
    ]
    identities = {}
    for p in planned:
        identities.setdefault(str(number[p.part.path]), p.part.identity)
    doc = {"version": 1, "paths": paths, "storage_options": storage_options, "ranges": ranges,
           "identities": identities}
    return base64.b64encode(zlib.compress(json.dumps(doc).encode())).decode()


def _identity(value: Optional[list]) -> Optional[tuple]:
    """An identity (see ``partition.identity``) back from JSON."""
    if value is None:
        return None
    return tuple(tuple(v) if isinstance(v, list) else v for v in value)


def _decode(plan: str) -> tuple[list[str], list[Planned]]:
    """The paths and ranges of a plan from :func:`_encode`."""
    try:
        doc = json.loads(zlib.decompress(base64.b64decode(plan)))
        if doc.get("version") != 1:
            raise ValueError(f"version {doc.get('version')!r}")
    except Exception as e:
        raise ValueError(f"the survey option is not a plan from pcap_parallel.spark.survey ({e})") from None

    def boundary(b: Optional[list]) -> Optional[tuple]:
        return None if b is None else (b[0], base64.b64decode(b[1]))

    paths, options = doc["paths"], doc["storage_options"]
    # What each file was at the survey (plans of before had none: not checked).
    identities = {int(k): _identity(v) for k, v in doc.get("identities", {}).items()}
    planned = [
        Planned(Partition(paths[f], index, start, end, size, whole, options, identities.get(f)), boundary(entry),
                before, packets, boundary(exit))
        for f, index, start, end, size, whole, entry, before, packets, exit in doc["ranges"]
    ]
    return paths, planned
