"""Packet tables through Python: every corpus capture's table from
``to_arrow()`` equals the Parquet file the command line writes, row for row
(and its packet bytes hash to the manifest's data_sha256); pandas, polars
and DuckDB count what ``top`` counts; the streaming reader's memory stays
flat while the whole table's does not; a broken capture gives the rows
before the fault, then its error with file, offset and packet."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pcap_parallel
from pcap_parallel.errors import CaptureError

from conftest import SAMPLE, Fingerprint, binary, run
from test_corpus import check_error, is_ok
from test_memory import MIB, peak_memory

CLI = binary("pcap-parallel")


def cli_table(path: Path, out: Path, *options: str) -> pa.Table:
    """The command line's Parquet table of ``path``."""
    r = run([CLI, "table", path, "-o", out, "--force", *options])
    assert r.returncode in (0, 1), r.stderr
    return pq.read_table(out)


def _packet_times(path: Path, n: int) -> list:
    """The times of the first ``n`` packets, from the packet iterator."""
    times = []
    try:
        for p in pcap_parallel.open(path).packets():
            times.append(p.ts)
    except CaptureError:
        pass
    assert len(times) == n
    return times


def check_packets(row: dict, table: pa.Table) -> None:
    """The table's packets, lengths and times hash as the manifest's."""
    fp = Fingerprint()
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    if None in ts:
        # Null where a time is absent (Simple Packet Blocks) or outside
        # timestamp[ns]'s years 1677-2262: the packet's own time, checked.
        times = _packet_times(row["path"], len(ts))
        for i, t in enumerate(ts):
            if t is None:
                assert times[i] is None or not -(2**63) <= times[i] < 2**63, (row["file"], i)
                ts[i] = times[i]
    for data, length, ns in zip(table.column("data").to_pylist(), table.column("len").to_pylist(), ts):
        fp.add(data, length, ns)
    assert fp.packets == int(row["packets_parser"]), row["file"]
    assert fp.data.hexdigest() == row["data_sha256"], row["file"]
    assert fp.records.hexdigest() == row["records_sha256"], row["file"]


def test_every_corpus_table_equals_the_command_lines(manifest, tmp_path):
    """97 packets a chunk in Python, the automatic chunking in the CLI: the
    same rows; a broken file: the rows before the fault, then the error."""
    out = tmp_path / "t.parquet"
    for row in manifest:
        cap = pcap_parallel.open(row["path"], packets=97)
        expected = cli_table(row["path"], out, "--data")
        error = None
        try:
            table = cap.to_arrow(data=True)
        except CaptureError as e:
            error, table = e, e.table
        assert table.equals(expected), row["file"]
        assert table.schema == expected.schema, row["file"]
        check_packets(row, table)
        frames = table.column("frame_number").to_pylist()
        assert frames == list(range(1, len(frames) + 1)), row["file"]
        if is_ok(row):
            assert error is None, f"{row['file']}: {error}"
        else:
            assert error is not None, f"{row['file']}: no error"
            check_error(row, error)


def test_polars_and_duckdb_read_the_command_lines_parquet_as_pyarrow_does(manifest, tmp_path):
    """Every corpus capture's Parquet file (each column encoded its own way:
    delta, plain, dictionary), read by polars and by DuckDB, holds the rows
    pyarrow reads, value for value (their types cast to the file's: polars
    reads large strings, DuckDB names the zone Etc/UTC)."""
    out = tmp_path / "t.parquet"
    for row in manifest:
        expected = cli_table(row["path"], out, "--data")
        by_polars = pl.read_parquet(out).to_arrow()
        by_duckdb = duckdb.sql("select * from read_parquet(?)", params=[str(out)]).arrow()
        if isinstance(by_duckdb, pa.RecordBatchReader):
            by_duckdb = by_duckdb.read_all()
        for name, table in (("polars", by_polars), ("duckdb", by_duckdb)):
            assert table.num_rows == expected.num_rows, (row["file"], name)
            assert table.column_names == expected.column_names, (row["file"], name)
            assert table.cast(expected.schema).equals(expected), (row["file"], name)


def test_the_streaming_reader_gives_the_same_rows_then_the_error(manifest):
    broken = [r for r in manifest if not is_ok(r) and int(r["packets_parser"]) > 0]
    assert broken
    for row in broken + [r for r in manifest if is_ok(r)][:10]:
        cap = pcap_parallel.open(row["path"], packets=5)
        reader = cap.to_batches(["frame_number", "cap_len", "len"])
        assert isinstance(reader, pa.RecordBatchReader)
        batches, error = [], None
        try:
            for b in reader:
                batches.append(b)
        except CaptureError as e:
            error = e
        rows = sum(b.num_rows for b in batches)
        assert rows == int(row["packets_parser"]), row["file"]
        if is_ok(row):
            assert error is None
        else:
            check_error(row, error)
            # write_parquet: a complete file of those rows, then the error.
            out = Path(row["path"]).name + ".parquet"
            with pytest.raises(CaptureError) as raised:
                cap.write_parquet(out)
            check_error(row, raised.value)
            assert pq.read_table(out).num_rows == rows
            Path(out).unlink()


def test_options_as_the_command_lines(tmp_path):
    out = tmp_path / "t.parquet"
    files = [SAMPLE]
    for options, cli in [
        (dict(columns="ts,src_ip,dst_ip,dst_port", filter="tcp"),
         ["--columns", "ts,src_ip,dst_ip,dst_port", "--filter", "tcp"]),
        (dict(columns=["dst_ip", "len"], ip_as="binary", max_packets=321),
         ["--columns", "dst_ip,len", "--ip-as", "binary", "-c", "321"]),
        (dict(data=True, filter="udp or icmp"), ["--data", "--filter", "udp or icmp"]),
    ]:
        table_opts = {k: options.pop(k) for k in ("columns", "data", "ip_as") if k in options}
        for path in files:
            expected = cli_table(path, out, *cli)
            got = pcap_parallel.open(path, chunks=3, **options).to_arrow(**table_opts)
            assert got.num_rows > 0
            assert got.equals(expected), cli
    with pytest.raises(ValueError, match="unknown column"):
        pcap_parallel.open(SAMPLE).to_arrow(["src_ip", "nope"])
    with pytest.raises(ValueError, match="ip_as"):
        pcap_parallel.open(SAMPLE).to_arrow(ip_as="hex")


def cli_top(path: Path, by: str) -> dict[str, tuple[int, int]]:
    r = run([CLI, "top", path, "--by", by, "--limit", "0", "--json"])
    assert r.returncode == 0, r.stderr
    return {row["key"]: (row["packets"], row["bytes"]) for row in json.loads(r.stdout)["rows"]}


def top_files(manifest) -> list[Path]:
    ok = [r for r in manifest if is_ok(r)]
    ok.sort(key=lambda r: -int(r["packets_parser"]))
    return [SAMPLE] + [r["path"] for r in ok[:4]]


@pytest.mark.parametrize("by,column", [("src", "src_ip"), ("dst", "dst_ip"), ("dport", "dst_port")])
def test_pandas_polars_and_duckdb_count_what_top_counts(manifest, by, column):
    for path in top_files(manifest):
        expected = cli_top(path, by)
        assert expected, path
        cap = pcap_parallel.open(path)
        py_top = cap.top(by=by, limit=0)
        assert {r["key"]: (r["packets"], r["bytes"]) for r in py_top["rows"]} == expected

        df = cap.to_pandas()
        g = df[df[column].notna()].groupby(column)["len"].agg(["count", "sum"])
        fmt = (lambda k: str(int(k))) if by == "dport" else str
        assert {fmt(k): (int(n), int(b)) for k, (n, b) in g.iterrows()} == expected, path

        p = cap.to_polars().filter(pl.col(column).is_not_null())
        g = p.group_by(column).agg(pl.len().alias("n"), pl.col("len").sum().alias("b"))
        assert {str(k): (n, b) for k, n, b in g.iter_rows()} == expected, path

        tbl = cap.to_batches()  # DuckDB over the Arrow stream, by its name
        rows = duckdb.sql(
            f"select {column}, count(*), sum(len) from tbl where {column} is not null group by 1"
        ).fetchall()
        assert {str(k): (n, int(b)) for k, n, b in rows} == expected, path


def test_duckdb_and_polars_read_a_capture_directly(manifest):
    for path in top_files(manifest):
        cap = pcap_parallel.open(path, workers=2)
        n = cap.count()
        assert duckdb.sql("select count(*) from cap").fetchall() == [(n,)]
        assert pl.DataFrame(cap).height == n
        assert pa.table(cap).num_rows == n


def test_write_parquet_is_atomic_and_the_command_lines(tmp_path):
    out = tmp_path / "sample.parquet"
    cap = pcap_parallel.open(SAMPLE, packets=100)
    assert cap.write_parquet(out) == 1000
    assert pq.read_table(out).equals(cli_table(SAMPLE, tmp_path / "cli.parquet"))
    assert [p.name for p in tmp_path.iterdir()] != []
    with pytest.raises(FileExistsError):
        cap.write_parquet(out)
    assert cap.write_parquet(out, ["frame_number"], force=True, compression="snappy") == 1000
    assert pq.read_table(out).column_names == ["frame_number"]
    # Only the two finished files: no temporary one left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.parquet", "sample.parquet"]
    # A filter that does not suit the capture: an error and no file.
    bad = tmp_path / "bad.parquet"
    with pytest.raises(CaptureError):
        pcap_parallel.open(SAMPLE, filter="wlan type mgt").write_parquet(bad)
    assert not bad.exists()


STREAM = textwrap.dedent(
    """
    import sys
    import pcap_parallel
    cap = pcap_parallel.open(sys.argv[1], workers=2)
    if sys.argv[2] == "stream":
        rows = sum(b.num_rows for b in cap.to_batches())
    else:
        table = cap.to_arrow()
        rows = table.num_rows
    print(rows)
    """
)


def test_the_streaming_reader_keeps_memory_flat(tmp_path):
    """On a 1 GiB capture: reading the table as a stream peaks far below
    the whole table's size, which to_arrow() holds."""
    path = tmp_path / "synthetic-1g.pcap"
    subprocess.run([binary("pcap-synth"), "--seed", "3", "--bytes", "1G", path],
                   check=True, capture_output=True)
    (tmp_path / "run.py").write_text(STREAM)
    out, stream_peak, _ = peak_memory([sys.executable, "run.py", str(path), "stream"], tmp_path)
    rows = int(out)
    out, whole_peak, _ = peak_memory([sys.executable, "run.py", str(path), "whole"], tmp_path)
    assert int(out) == rows == pcap_parallel.open(path).count()
    table_bytes = pcap_parallel.open(path, max_packets=100_000).to_arrow().nbytes * rows / 100_000
    print(f"\n{rows} rows, table {table_bytes / MIB:.0f} MiB; peak RssAnon: stream "
          f"{stream_peak / MIB:.0f} MiB, whole {whole_peak / MIB:.0f} MiB")
    assert whole_peak > table_bytes
    assert stream_peak < 150 * MIB < table_bytes
