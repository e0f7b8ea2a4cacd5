"""Packet tables on Spark: a Spark 4 Python data source named ``pcap``.

>>> import pcap_parallel.spark                              # doctest: +SKIP
>>> pcap_parallel.spark.register(spark)                     # doctest: +SKIP
>>> df = spark.read.format("pcap").load("/data/2026-11-*.pcap")  # doctest: +SKIP
>>> df.groupBy("src_ip").count().orderBy("count", ascending=False).show()  # doctest: +SKIP

Each capture is cut into byte ranges (``partitionSize``, 128 MiB by
default as Spark's ``spark.sql.files.maxPartitionBytes``; a compressed
capture is one range). When Spark plans the scan, the
data source *surveys* the captures on the driver's cores: it walks the record
headers of every range from a guessed boundary and verifies each boundary
in file order (the ranges whose guess was wrong are walked again), exactly
as ``pcap_parallel.dask.survey`` does on a Dask cluster. Each Spark task
then reads its range from the verified start and decodes it in Rust into
Arrow record batches, which Spark takes as they are.

The columns are the packet table's (``pcap-parallel table``, see the
README) in Spark's types, which have no unsigned integers and keep
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
  before the fault, and a warning).

``load`` takes a path, a glob pattern, or several separated by commas;
paths may be fsspec URLs (``s3://...``) read by ranges
(``storage_options``: ``.option("storage_options", json.dumps({...}))``).
"""

from __future__ import annotations

import json
import warnings
from typing import Any, Iterator, Optional

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
from .partition import Planned

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
        self.partition_size = int(o.get("partitionsize", PARTITION_SIZE))
        columns = o.get("columns")
        self.table = dict(
            columns=[c.strip() for c in columns.split(",") if c.strip()] if columns else None,
            data=_flag(o.get("data")),
            ip_as=o.get("ipas", "text"),
            decapsulate=o.get("decapsulate") or None,
        )
        self.path_column = "path" if _flag(o.get("includepathcolumn")) else None
        self.ts_nanos = o.get("ts", "timestamp").lower() in ("nanoseconds", "ns", "long")
        mode = o.get("mode", "FAILFAST").upper()
        if mode not in ("FAILFAST", "PERMISSIVE"):
            raise ValueError(f"mode must be FAILFAST or PERMISSIVE, not {mode!r}")
        self.permissive = mode == "PERMISSIVE"
        self.storage_options = json.loads(o.get("storage_options", "{}"))

    def arrow_schema(self) -> Any:
        """The Arrow schema the batches are cast to (Spark's types)."""
        import pyarrow as pa

        fields = [pa.field(f.name, _spark_arrow(f.type, self.ts_nanos)) for f in _native.table_schema(**self.table)]
        if self.path_column:
            fields.append(pa.field(self.path_column, pa.string()))
        return pa.schema(fields)


def _flag(value: Optional[str]) -> bool:
    return str(value).lower() in ("true", "1", "yes")


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
        if not o.paths:
            raise ValueError('the pcap data source needs a path: spark.read.format("pcap").load(PATH)')
        out = []
        for parts in _parts.partitions_of(o.paths, o.partition_size, o.storage_options):
            plan = _parts.survey_local(parts)
            out.extend(PcapPartition(planned) for planned in plan)
            if plan.error is not None:
                if not o.permissive:
                    raise plan.error
                warnings.warn(f"pcap: {plan.error} (the rows before it are read)", stacklevel=1)
                break
        return out

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
