"""Captures on S3, read by byte ranges: an S3 API server (moto's, on
127.0.0.1, started here) stands in for the real one.

    pip install 'pcap-parallel[dask]' s3fs 'moto[server]'
    python examples/s3_moto.py [CAPTURE]         # default: samples/sample.pcap

With real S3, leave the server out and give your own storage options (or
none, for the usual AWS credentials): fsspec's ``storage_options`` as in
``dask.dataframe.read_parquet``.

Prints, one per line: ``url URL``, ``rows N`` (read_pcap's dataframe over
the URL on a local Dask cluster), ``src ADDRESS PACKETS`` for every source
address, busiest first, ``open_packets N`` (pcap_parallel.open on an s3fs
file object) and ``dropin_packets N`` (PCAPParallel on one, its callback
reading each chunk with dpkt).
"""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

import boto3
import distributed
import dpkt
import s3fs
from moto.server import ThreadedMotoServer

import pcap_parallel
from pcap_parallel import PCAPParallel
from pcap_parallel import dask as ppd

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sample.pcap"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def count_with_dpkt(f) -> int:
    """PCAPParallel's callback: one chunk, a standalone pcap in an io.BytesIO."""
    return sum(1 for _ in dpkt.pcap.Reader(f))


def main(path: str) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the server's request log
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        # fsspec's storage options for s3fs: what every worker uses to reach the bucket.
        storage_options = {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        ).create_bucket(Bucket="captures")
        fs = s3fs.S3FileSystem(**storage_options)
        fs.put_file(path, "captures/" + Path(path).name)
        url = "s3://captures/" + Path(path).name
        print("url", url)

        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster, distributed.Client(cluster) as client:
            # Each worker reads its own byte range of the object (ranged GETs).
            df = ppd.read_pcap(
                url, columns=["src_ip"], partition_size=64 << 10, storage_options=storage_options, client=client
            )
            print("rows", len(df))
            counts = df.groupby("src_ip").size().compute()
            for src, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
                print("src", src, int(n))

        # open() and PCAPParallel also take a binary file object (read as a stream).
        with fs.open(url, "rb") as f:
            print("open_packets", pcap_parallel.open(f).count())
        with fs.open(url, "rb") as f:
            futures = PCAPParallel(f, callback=count_with_dpkt).split()
            print("dropin_packets", sum(fut.result() for fut in futures))
    finally:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(SAMPLE))
