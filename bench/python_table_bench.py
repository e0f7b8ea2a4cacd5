"""Benchmark rows of the Python packet tables (issue 11), with same-run ratios.

    python bench/python_table_bench.py [--runs N] [--size 1G] [--data bench/data]

Run it with the Python that has `pcap_parallel` (and pyarrow, polars,
pandas) installed — scripts/test leaves one in target/py-venv — after
`cargo build --release --workspace`. It uses the benchmark suite's capture
(bench/data/1G.pcap, pcap-synth seed 42; generated if missing) and measures,
each in a fresh process, in the same run:

1. `open(path).to_arrow()` against the CLI writing Arrow IPC to /dev/null
   (`pcap-parallel table -o /dev/null --format arrow`): the issue's target
   is within 1.2x.
2. `to_batches()` read to its end (streaming) and `write_parquet()` against
   the CLI writing the same Parquet file.
3. `to_polars()` and `to_pandas()`, for what the conversions add.

Each Python figure is the time of the call alone, measured inside the
process: interpreter start and imports are not counted, including those the
call would make on first use (pyarrow's above all, which is timed on its own
line); the CLI's process start, a few milliseconds, is. The result is kept
while the clock runs, as a caller keeps it; freeing a whole table (a few
hundred MiB of pages given back to the kernel) is its own row, `to_arrow()`
then the table freed. Figures are medians of --runs runs after one warm-up,
with min-max, and the peak RssAnon of the process (sampled from /proc every
5 ms). Each row's baseline is measured anew, its runs alternating with the
row's own, so that the load of a shared machine falls on both alike: only
ratios within one row mean much.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20

CALL = textwrap.dedent(
    """
    import importlib, sys, time
    import pcap_parallel
    what, path, out = sys.argv[1:4]
    # The libraries the call imports on its first use, imported first: the
    # import (about 0.1 s for pyarrow, and numpy's OpenBLAS threads spinning
    # for some 0.1 s of CPU after it) is a cost of the process, not the call.
    for name in sys.argv[4].split(",") if sys.argv[4] else []:
        importlib.import_module(name)
    time.sleep(0.5)
    cap = pcap_parallel.open(path)
    start = time.perf_counter()
    result = None
    if what in ("to_arrow", "to_arrow_freed"):
        result = cap.to_arrow()
        rows = result.num_rows
    elif what == "to_batches":
        rows = sum(b.num_rows for b in cap.to_batches())
    elif what == "write_parquet":
        rows = cap.write_parquet(out, force=True)
    elif what == "to_polars":
        result = cap.to_polars()
        rows = result.height
    elif what == "to_pandas":
        result = cap.to_pandas()
        rows = len(result)
    if what == "to_arrow_freed":
        del result
    print(time.perf_counter() - start, rows)
    """
)


IMPORT = "import time; t = time.perf_counter(); import pyarrow; print(time.perf_counter() - t)"


def rss_anon(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def timed(argv: list[str], inner: bool) -> tuple[float, int, str]:
    """Runs argv; returns its time (the one it prints if ``inner``), its
    peak RssAnon and its output."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, rss_anon(proc.pid))
        time.sleep(0.005)
    wall = time.perf_counter() - start
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv}: {err}")
    return (float(out.split()[0]) if inner else wall), peak, out


def summary(results: list[tuple[float, int, str]]) -> dict:
    times = [r[0] for r in results]
    return {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "peak_mib": max(r[1] for r in results) / MIB,
        "out": results[-1][2],
    }


def measure_pair(ours: list[str], base: list[str], runs: int) -> tuple[dict, dict]:
    """Runs ``ours`` (a Python call, timed inside) and ``base`` (a command,
    timed from outside) alternately, after a warm-up of each, so that the
    load of a shared machine falls on both alike."""
    timed(ours, True)
    timed(base, False)
    pairs = [(timed(ours, True), timed(base, False)) for _ in range(runs)]
    return summary([p[0] for p in pairs]), summary([p[1] for p in pairs])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size", default="1G")
    ap.add_argument("--data", type=Path, default=REPO / "bench" / "data")
    args = ap.parse_args()
    capture = args.data / f"{args.size}.pcap"
    release = REPO / "target" / "release"
    if not capture.exists():
        subprocess.run([release / "pcap-synth", "--seed", "42", "--bytes", args.size, capture],
                       check=True)
    cli = str(release / "pcap-parallel")
    parquet = str(args.data / "py-table-out.parquet")
    script = args.data / "py_table_call.py"
    script.write_text(CALL)
    runs = args.runs

    cli_arrow = [cli, "table", "-q", str(capture), "-o", "/dev/null", "--format", "arrow"]
    cli_parquet = [cli, "table", "-q", str(capture), "-o", parquet, "--force"]
    arrow_name, parquet_name = "CLI → Arrow IPC /dev/null", "CLI → Parquet"
    # Each call, with the libraries it imports on first use.
    measured = [
        ("to_arrow() (a pyarrow.Table)", "to_arrow", "pyarrow", cli_arrow, arrow_name, "≤ 1.2×"),
        ("to_arrow(), then the table freed", "to_arrow_freed", "pyarrow", cli_arrow, arrow_name, ""),
        ("to_batches() read to the end", "to_batches", "pyarrow", cli_arrow, arrow_name, ""),
        ("write_parquet()", "write_parquet", "", cli_parquet, parquet_name, ""),
        ("to_polars()", "to_polars", "pyarrow,polars", cli_arrow, arrow_name, ""),
        ("to_pandas()", "to_pandas", "pyarrow,pandas", cli_arrow, arrow_name, ""),
    ]
    rows = []
    for what, call, imports, base, base_name, target in measured:
        ours = [sys.executable, str(script), call, str(capture), parquet, imports]
        rows.append((what, *measure_pair(ours, base, runs), base_name, target))
    first_use = [
        float(subprocess.run([sys.executable, "-c", IMPORT], capture_output=True, text=True,
                             check=True).stdout)
        for _ in range(runs)
    ]
    packets = int(rows[0][1]["out"].split()[1])
    print(f"{capture.name}: {capture.stat().st_size / MIB:.0f} MiB, {packets} packets, "
          f"{runs} runs\n")
    print("| what | ours (median s, min–max) | baseline | baseline (median s) | ratio | target "
          "| peak RssAnon MiB (ours / baseline) |")
    print("|---|---|---|---|---|---|---|")
    for what, ours, base, base_name, target in rows:
        print(f"| {what} | {ours['median']:.3f} ({ours['min']:.3f}–{ours['max']:.3f}) | {base_name} "
              f"| {base['median']:.3f} | {ours['median'] / base['median']:.2f}× | {target} "
              f"| {ours['peak_mib']:.0f} / {base['peak_mib']:.0f} |")
    print(f"\nto_arrow(): {packets / rows[0][1]['median'] / 1e6:.2f} M packets/s")
    print(f"A process's first table call also imports pyarrow: {statistics.median(first_use):.3f} s "
          f"(median of {runs}; not in the rows above)")
    Path(parquet).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
