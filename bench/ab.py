#!/usr/bin/env python3
"""A/B timing of two pcap-parallel binaries on the same commands, interleaved.

For a change that must not make anything slower (a refactoring, a new
dependency): build the old and the new binary, then

    bench/ab.py --old /tmp/old/pcap-parallel --new target/release/pcap-parallel \\
        --runs 7 bench/data/200M.pcap bench/data/200M.pcapng bench/data/200M.pcap.gz

Each command (info, top --by src, split --chunks 8 into a temporary
directory, count via info -c) runs on each file with the old and the new
binary alternately, after one warm-up each, so that both see the same
machine load. Prints the medians (min-max) and new/old ratios; on a shared
machine, read ratios within about 5% as equal.

With --table, the commands are the packet table's instead: `table` to
Parquet (zstd, into the temporary directory) and to Arrow IPC on /dev/null.
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def commands(binary, path, scratch):
    return {
        "info": [binary, "info", "-q", path],
        "top --by src": [binary, "top", "-q", "--by", "src", "--limit", "10", path],
        "split --chunks 8": [binary, "split", "-q", "--chunks", "8", "--force", "-o", scratch, path],
    }


def table_commands(binary, path, scratch):
    return {
        "table → Parquet": [binary, "table", "-q", path, "-o", f"{scratch}/t.parquet"],
        "table → Arrow IPC /dev/null": [binary, "table", "-q", path, "--format", "arrow", "-o", "/dev/null"],
    }


def run(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--table", action="store_true", help="time the packet-table commands")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    print("| command | file | old median s (min-max) | new median s (min-max) | new/old |")
    print("|---|---|---:|---:|---:|")
    cmds = table_commands if a.table else commands
    for path in a.files:
        for name in cmds("x", path, "x"):
            times = {"old": [], "new": []}
            for i in range(a.runs + 1):
                for side in ("old", "new"):
                    scratch = tempfile.mkdtemp(prefix="ab-")
                    try:
                        t = run(cmds(getattr(a, side), path, scratch)[name])
                    finally:
                        shutil.rmtree(scratch, ignore_errors=True)
                    if i > 0:
                        times[side].append(t)
            o, n = statistics.median(times["old"]), statistics.median(times["new"])
            fmt = lambda v: f"{statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f})"
            print(f"| {name} | {path.rsplit('/', 1)[-1]} | {fmt(times['old'])} | {fmt(times['new'])} | {n / o:.2f} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
