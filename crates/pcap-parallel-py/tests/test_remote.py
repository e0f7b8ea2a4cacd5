"""Captures on an S3 API server (moto's server mode, on 127.0.0.1, started
by the tests) read through fsspec: a partition reads only its range (plus
the head and what its last packet needs), never the whole object; on a
Dask cluster the results equal the single-machine reading."""

from __future__ import annotations

import contextlib
import socket

import boto3
import pytest
import s3fs
from moto.server import ThreadedMotoServer

import pcap_parallel
from pcap_parallel import dask as ppd
from pcap_parallel import partition as pp
from conftest import Fingerprint, capture_file
from test_dask import assert_same_rows, client, fingerprint, packet_rows  # noqa: F401 (the cluster fixture)

# Shipped in samples/real (and in the corpus): these tests run on any clone.
FILES = [
    "seladb__PcapPlusPlus__http-packets.pcap",
    "rusticata__pcap-parser__wireshark_samples-test.pcapng",
    "OISF__suricata-verify__tests--nfs3-01--input.pcap",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    with s3_server() as options:
        yield options


@contextlib.contextmanager
def s3_server():
    """An S3 API server on 127.0.0.1 with FILES in bucket ``captures``;
    yields the fsspec storage options that reach it."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": "us-east-1"},
    }
    boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket="captures")
    fs = s3fs.S3FileSystem(**options)
    for name in FILES:
        fs.put_file(str(capture_file(name)), f"captures/{name}")
    try:
        yield options
    finally:
        server.stop()


def test_a_partition_reads_only_its_range(s3, monkeypatch):
    fetched: list[tuple[int, int]] = []
    original = s3fs.core.S3File._fetch_range

    def counting(self, start, end):
        fetched.append((start, end))
        return original(self, start, end)

    monkeypatch.setattr(s3fs.core.S3File, "_fetch_range", counting)
    url = f"s3://captures/{FILES[0]}"
    parts = pp.partitions(url, 1 << 20, storage_options=s3)
    size = parts[-1].end
    assert len(parts) >= 3
    local = pp.partitions(str(capture_file(FILES[0])), 1 << 20)
    assert len(local) == len(parts)
    for part, here in zip(parts, local):
        fetched.clear()
        report = pp.read(part).report
        assert report == pp.read(here).report
        got = sum(end - start for start, end in fetched)
        assert got < (part.end - part.start) + (256 << 10) < size, (part.index, got, size)
        assert all(start == 0 or start >= part.start for start, _ in fetched)


def test_map_chunks_over_s3_equals_the_local_reading(s3, client, manifest):  # noqa: F811
    results = ppd.map_chunks(
        packet_rows, "s3://captures/*.pcap*", partition_size=64 << 10, client=client, storage_options=s3
    )
    want = Fingerprint()
    for name in sorted(FILES):
        for p in pcap_parallel.open(str(capture_file(name))).packets():
            want.add_packet(p)
    fp = fingerprint(results)
    counts = {r["file"]: int(r["packets_parser"]) for r in manifest}
    assert fp.packets == want.packets == sum(counts[name] for name in FILES) > 0
    assert (fp.data.hexdigest(), fp.records.hexdigest()) == (want.data.hexdigest(), want.records.hexdigest())


def test_read_pcap_over_s3_equals_the_local_table(s3, client):  # noqa: F811
    import pyarrow as pa

    df = ppd.read_pcap("s3://captures/*.pcap*", partition_size=64 << 10, client=client, storage_options=s3)
    assert df.npartitions > len(FILES)
    got = pa.Table.from_pandas(df.compute(), preserve_index=False)
    want = pa.concat_tables(pcap_parallel.open(str(capture_file(name))).to_arrow() for name in sorted(FILES))
    assert got.num_rows > 0
    assert_same_rows(got, want)
