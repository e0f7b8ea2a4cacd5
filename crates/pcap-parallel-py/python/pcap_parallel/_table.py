"""Packet tables: a capture as one row per packet, for pyarrow, pandas,
polars and DuckDB.

The rows are decoded and the Arrow batches built in Rust, chunk by chunk on
every core, and handed to pyarrow without copying (the Arrow C data
interface). The columns are the command line's ``pcap-parallel table``
columns (see docs/tables.md), in the same order, with the same types.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence, Union

from . import _native

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    import polars
    import pyarrow

    from .capture import Capture

Columns = Optional[Union[str, Sequence[str]]]


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "packet tables need pyarrow: pip install 'pcap-parallel[arrow]'"
        ) from e
    return pyarrow


def _column_list(columns: Columns) -> Optional[list[str]]:
    if columns is None:
        return None
    if isinstance(columns, str):
        return [c for c in columns.split(",") if c.strip()]
    return list(columns)


def stream(
    capture: "Capture",
    columns: Columns,
    data: bool,
    ip_as: str,
    decapsulate: Optional[str],
) -> Any:
    """The native stream of ``capture``'s batches (pyarrow is needed to
    receive them)."""
    _pyarrow()
    return _native.TableStream(
        capture._opener,
        _column_list(columns),
        data,
        ip_as,
        decapsulate,
        capture._callback("table"),
    )


def _batches(native: Any) -> Iterator["pyarrow.RecordBatch"]:
    try:
        yield from native
    finally:
        native.close()


def to_batches(capture: "Capture", **options: Any) -> "pyarrow.RecordBatchReader":
    """A ``pyarrow.RecordBatchReader`` over ``capture``'s table, in file
    order; see :meth:`Capture.to_batches`."""
    pa = _pyarrow()
    native = stream(capture, **options)
    return pa.RecordBatchReader.from_batches(native.schema, _batches(native))


def to_arrow(capture: "Capture", **options: Any) -> "pyarrow.Table":
    """The whole table; see :meth:`Capture.to_arrow`."""
    pa = _pyarrow()
    native = stream(capture, **options)
    batches: list = []
    try:
        for batch in native:
            batches.append(batch)
    except Exception as e:
        # The rows before the fault, for whoever wants them.
        e.table = pa.Table.from_batches(batches, schema=native.schema)  # type: ignore[attr-defined]
        raise
    finally:
        native.close()
    return pa.Table.from_batches(batches, schema=native.schema)


def to_pandas(capture: "Capture", pandas_options: dict, **options: Any) -> "pandas.DataFrame":
    """See :meth:`Capture.to_pandas`."""
    return to_arrow(capture, **options).to_pandas(**pandas_options)


def to_polars(capture: "Capture", **options: Any) -> "polars.DataFrame":
    """See :meth:`Capture.to_polars`."""
    try:
        import polars
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("to_polars needs polars: pip install polars") from e
    return polars.from_arrow(to_arrow(capture, **options))


def write(
    capture: "Capture",
    path: Union[str, "os.PathLike[str]"],
    fmt: str,
    compression: str,
    force: bool,
    columns: Columns,
    data: bool,
    ip_as: str,
    decapsulate: Optional[str],
) -> int:
    """See :meth:`Capture.write_parquet`."""
    return _native.write_table(
        capture._opener,
        os.fspath(path),
        fmt,
        _column_list(columns),
        data,
        ip_as,
        decapsulate,
        compression,
        force,
        capture._callback("table"),
    )
