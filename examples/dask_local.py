"""pcap-parallel on a Dask cluster of two worker processes on this machine.

    pip install 'pcap-parallel[dask]'
    python examples/dask_local.py [CAPTURE]      # default: samples/sample.pcap

The same calls run on a real cluster: give them a ``distributed.Client``
connected to its scheduler (``Client("scheduler:8786")``) instead of the
local one, and paths every worker can read (a shared file system, or
``s3://...`` URLs: see s3_moto.py).

Prints, one per line: ``partitions N``, ``chunk_packets N`` (packets counted
by map_chunks), ``rows N`` (rows of read_pcap's dataframe), then
``src ADDRESS PACKETS BYTES`` for every source address, busiest first.
"""

from __future__ import annotations

import sys
from pathlib import Path

import distributed

import pcap_parallel
from pcap_parallel import dask as ppd

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sample.pcap"


def count_packets(f) -> int:
    """map_chunks' function, on a worker: PCAPParallel's contract, a
    partition as a standalone capture in an io.BytesIO (dpkt, scapy or
    pcap_parallel.open read it)."""
    return pcap_parallel.open(f, workers=1).count()


def main(path: str) -> None:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        # Small partitions so that a small capture is cut too (the defaults,
        # 64 MiB for map_chunks and 256 MiB for read_pcap, suit real captures).
        counts = ppd.map_chunks(count_packets, path, partition_size=64 << 10, client=client)
        print("partitions", len(counts))
        print("chunk_packets", sum(counts))

        df = ppd.read_pcap(path, columns=["src_ip", "len"], partition_size=64 << 10, client=client)
        print("rows", len(df))
        per_source = df.groupby("src_ip").agg(packets=("len", "size"), bytes=("len", "sum")).compute()
        per_source = per_source.reset_index().sort_values(["packets", "src_ip"], ascending=[False, True])
        for row in per_source.itertuples(index=False):
            print("src", row.src_ip, int(row.packets), int(row.bytes))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(SAMPLE))
