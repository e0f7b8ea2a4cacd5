"""Benchmark rows of pcap_parallel.dask (issue 12), with same-run ratios.

    python bench/dask_bench.py [--runs N] [--size 1G] [--partition-mib 64] [--tables-only]

Run it with the Python that has `pcap_parallel`, dask[distributed] and dpkt
installed (scripts/test leaves one in target/py-venv). It uses the
benchmark suite's capture (bench/data/1G.pcap, pcap-synth seed 42,
generated if missing, as bench/python_bench.py does) and measures:

1. `map_chunks` of a per-packet Python workload (the original README's
   callback: dpkt, counting source addresses) on a LocalCluster of 2 worker
   processes against 1 worker process, on loopback, same run.
2. `read_pcap(...).groupby("src_ip").size()` (the packet table as a dask
   dataframe: the survey, then the table decoded on the workers and grouped
   there), 2 worker processes against 1; and `read_pcap` in full (the
   survey, then the table built on the workers: `persist()`, and gathered
   to the driver: `compute()`) against the in-process `to_arrow()` (the
   same table built on this machine's cores in one process).
3. The pieces of a simulated N-node run: every partition read and
   processed one at a time in this process (per-partition times), the
   driver's verification of all the reports (its serial cost), and the
   per-task overhead of the Dask cluster (a task that does nothing), from
   which the throughput of 8, 64 and 512 workers is projected (see
   `project`, which states the assumptions).

Figures are medians of --runs runs (after one warm-up), with min–max; the
machine is shared and noisy, so only ratios within one run mean much.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from python_bench import ensure_data  # noqa: E402  (the suite's captures)


def readme_callback(file_handle):
    """The original README's callback: source addresses counted with dpkt."""
    import ipaddress
    from collections import Counter

    import dpkt

    srcs = Counter()
    for _, packet in dpkt.pcap.Reader(file_handle):
        eth = dpkt.ethernet.Ethernet(packet)
        if isinstance(eth.data, dpkt.ip.IP):
            srcs[str(ipaddress.ip_address(eth.data.src))] += 1
    return srcs


def nothing(x):
    return x


def cluster_runs(path: Path, workers: int, runs: int, partition: int) -> dict:
    import distributed

    from pcap_parallel import dask as ppd

    with distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, silence_logs=40,
    ) as cluster, distributed.Client(cluster) as client:
        times, total, recomputed = [], None, 0
        for i in range(runs + 1):
            start = time.perf_counter()
            results = ppd.map_chunks(readme_callback, str(path), partition_size=partition, client=client)
            wall = time.perf_counter() - start
            counts = sum((sum(r.values()) for r in results))
            assert total is None or counts == total
            total, recomputed = counts, results.recomputed
            if i:
                times.append(wall)
        # Per-task overhead: 200 tasks that do nothing, submitted and gathered.
        overhead = []
        for _ in range(3):
            start = time.perf_counter()
            client.gather(client.map(nothing, range(200), pure=False))
            overhead.append((time.perf_counter() - start) / 200 * workers)
    return {"workers": workers, "times": times, "packets_counted": total, "recomputed": recomputed,
            "task_overhead": statistics.median(overhead)}


def table_runs(path: Path, workers: int, runs: int, partition: int) -> dict:
    """read_pcap's rows on a LocalCluster of ``workers`` processes."""
    import distributed

    from pcap_parallel import dask as ppd

    out: dict = {"workers": workers, "groupby": [], "persist": [], "compute": []}
    with distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, silence_logs=40,
    ) as cluster, distributed.Client(cluster) as client:
        sizes = None
        for i in range(runs + 1):
            start = time.perf_counter()
            got = ppd.read_pcap(str(path), partition_size=partition, client=client).groupby("src_ip").size().compute()
            wall = time.perf_counter() - start
            assert sizes is None or got.sort_index().equals(sizes)
            sizes = got.sort_index()
            if i:
                out["groupby"].append(wall)
        if workers > 1:
            for i in range(runs + 1):
                start = time.perf_counter()
                df = ppd.read_pcap(str(path), partition_size=partition, client=client).persist()
                distributed.wait(df)
                wall = time.perf_counter() - start
                del df
                if i:
                    out["persist"].append(wall)
            for i in range(runs + 1):
                start = time.perf_counter()
                rows = len(ppd.read_pcap(str(path), partition_size=partition, client=client).compute())
                wall = time.perf_counter() - start
                if i:
                    out["compute"].append(wall)
            out["rows"] = rows
    out["sizes"] = {str(k): int(v) for k, v in sizes.items()}
    return out


def in_process_to_arrow(path: Path, runs: int) -> dict:
    import pcap_parallel

    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        rows = pcap_parallel.open(str(path)).to_arrow().num_rows
        wall = time.perf_counter() - start
        if i:
            times.append(wall)
    return {"times": times, "rows": rows}


def tables(path: Path, o: argparse.Namespace, partition: int) -> None:
    two = table_runs(path, 2, o.runs, partition)
    one = table_runs(path, 1, o.runs, partition)
    base = in_process_to_arrow(path, o.runs)
    assert one["sizes"] == two["sizes"] and two["rows"] == base["rows"]
    ratio = statistics.median(one["groupby"]) / statistics.median(two["groupby"])
    print("| what | ours (median s) | baseline | baseline (median s) | ratio | target |")
    print("|---|---:|---|---:|---:|---|")
    print(f"| read_pcap(...).groupby(\"src_ip\").size(), 2 workers, {o.size} pcap, {o.table_partition_mib} MiB partitions | "
          f"{fmt(two['groupby'])} | 1 worker process | {fmt(one['groupby'])} | {ratio:.2f}× | ≥ 1.7× |")
    # The overhead target is the table built on the cluster (persist);
    # compute() adds Dask shipping every partition to the driver.
    for what, target in (("persist", "≤ 2×"), ("compute", "(none: the table shipped to the driver)")):
        r = statistics.median(two[what]) / statistics.median(base["times"])
        print(f"| read_pcap(...).{what}(), 2 workers | {fmt(two[what])} | in-process to_arrow() | "
              f"{fmt(base['times'])} | {r:.2f}× the baseline | {target} |")
    print(f"\n{base['rows']} rows; {len(two['sizes'])} source addresses, equal on 1 and 2 workers")


def simulated(path: Path, partition: int) -> dict:
    """Every partition read and processed one at a time; then the driver's
    verification of the reports, timed alone."""
    from pcap_parallel import partition as pp

    parts = pp.partitions(path, partition)
    per, reports = [], []
    for part in parts:
        start = time.perf_counter()
        report, _ = pp.map_partitions(readme_callback, part)
        per.append(time.perf_counter() - start)
        reports.append((report, None))
    start = time.perf_counter()
    verified = pp.verify(parts, iter(reports), lambda p, e: (pp.map_partitions(readme_callback, p, e)[0], None))
    verify = time.perf_counter() - start
    return {"partitions": len(parts), "per_partition": per, "verify": verify,
            "recomputed": verified.recomputed, "bytes": parts[-1].end}


def project(sim: dict, overhead: float, partition: int) -> dict:
    """Throughput of N workers on a capture large enough to give each many
    partitions of this size. Assumptions: partitions cost what they cost
    here, one at a time (median per byte), spread evenly over the workers;
    each task adds the cluster's measured per-task overhead; storage scales
    with the workers (each reads only its ranges); the driver checks the
    reports one after another at the measured cost per report, which caps
    the throughput at partition bytes / that cost."""
    per_byte = statistics.median(t for t in sim["per_partition"]) / partition
    task = per_byte * partition + overhead
    verify_each = sim["verify"] / sim["partitions"]
    out = {}
    for n in (8, 64, 512):
        workers_rate = n * partition / task
        driver_cap = partition / verify_each if verify_each else float("inf")
        out[n] = {"gib_per_s": min(workers_rate, driver_cap) / (1 << 30),
                  "workers_gib_per_s": workers_rate / (1 << 30), "driver_cap_gib_per_s": driver_cap / (1 << 30)}
    return out


def fmt(ts: list[float]) -> str:
    return f"{statistics.median(ts):.2f} ({min(ts):.2f}–{max(ts):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", default="1G")
    ap.add_argument("--partition-mib", type=int, default=64)
    ap.add_argument("--data", default=str(REPO / "bench" / "data"))
    ap.add_argument("--tables-only", action="store_true", help="only the read_pcap rows")
    ap.add_argument("--table-partition-mib", type=int, default=256, help="read_pcap's partitions (its default)")
    o = ap.parse_args()
    data = Path(o.data)
    path = ensure_data(data, [o.size])[o.size]
    partition = o.partition_mib << 20
    tables(path, o, o.table_partition_mib << 20)
    if o.tables_only:
        return
    two = cluster_runs(path, 2, o.runs, partition)
    one = cluster_runs(path, 1, o.runs, partition)
    assert one["packets_counted"] == two["packets_counted"]
    sim = simulated(path, partition)
    proj = project(sim, two["task_overhead"], partition)
    results = {"size": o.size, "partition": partition, "one": one, "two": two, "simulated": sim, "projected": proj}
    (data / "dask-results.json").write_text(json.dumps(results, indent=1))
    ratio = statistics.median(one["times"]) / statistics.median(two["times"])
    print("| what | 2 workers (median s) | baseline | baseline (median s) | ratio | target |")
    print("|---|---:|---|---:|---:|---|")
    print(f"| map_chunks, README callback (dpkt), {o.size} pcap, {o.partition_mib} MiB partitions | "
          f"{fmt(two['times'])} | 1 worker process | {fmt(one['times'])} | {ratio:.2f}× | ≥ 1.7× |")
    print()
    print(f"partitions {sim['partitions']}, recomputed {two['recomputed']} (cluster) / {sim['recomputed']} (simulated); "
          f"per partition one at a time: median {statistics.median(sim['per_partition']):.2f} s "
          f"({min(sim['per_partition']):.2f}–{max(sim['per_partition']):.2f}); driver verification of all "
          f"reports {sim['verify'] * 1e3:.2f} ms; per-task overhead {two['task_overhead'] * 1e3:.1f} ms")
    for n, p in proj.items():
        print(f"  projected {n} workers: {p['gib_per_s']:.2f} GiB/s (workers {p['workers_gib_per_s']:.2f}, "
              f"driver cap {p['driver_cap_gib_per_s']:.0f})")


if __name__ == "__main__":
    main()
