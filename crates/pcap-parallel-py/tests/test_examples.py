"""The scripts in examples/ run as written (in a fresh interpreter, from
another directory, on samples/sample.pcap by default), and what they print
is what an independent reader finds in the sample: packets counted from the
pcap record headers, per-source packets and bytes decoded by dpkt."""

from __future__ import annotations

import ipaddress
import struct
from collections import Counter
from pathlib import Path

import dpkt
import pytest

from conftest import REPO, SAMPLE, run_python

EXAMPLES = REPO / "examples"


def record_lengths(path: Path) -> list[int]:
    """The wire length of every record, read from the pcap headers."""
    data = path.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1", "a little-endian microsecond pcap"
    lengths = []
    at = 24
    while at < len(data):
        _, _, caplen, wire = struct.unpack_from("<IIII", data, at)
        lengths.append(wire)
        at += 16 + caplen
    assert at == len(data)
    return lengths


def dpkt_sources(path: Path) -> dict[str, tuple[int, int]]:
    """Packets and wire bytes per source address (IPv4 and IPv6; dpkt takes
    802.1Q and 802.1ad tags off the Ethernet frames itself)."""
    lengths = record_lengths(path)
    packets: Counter = Counter()
    octets: Counter = Counter()
    with open(path, "rb") as f:
        records = list(dpkt.pcap.Reader(f))
    assert len(records) == len(lengths)
    for (_, buf), wire in zip(records, lengths):
        ip = dpkt.ethernet.Ethernet(buf).data
        if isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
            src = str(ipaddress.ip_address(ip.src))
            packets[src] += 1
            octets[src] += wire
    return {k: (packets[k], octets[k]) for k in packets}


def busiest_first(sources: dict[str, tuple[int, int]]) -> list[str]:
    return sorted(sources, key=lambda k: (-sources[k][0], k))


def run_example(name: str, tmp_path: Path, *args: str) -> dict[str, list[list[str]]]:
    """Runs examples/NAME with this interpreter (its bin directory first on
    PATH, as in an activated virtual environment), in an empty directory;
    returns its output lines grouped by their first word."""
    out = run_python([EXAMPLES / name, *args], tmp_path)
    assert out.returncode == 0, f"{name} failed:\n{out.stdout}\n{out.stderr}"
    lines: dict[str, list[list[str]]] = {}
    for line in out.stdout.splitlines():
        word, *rest = line.split()
        lines.setdefault(word, []).append(rest)
    return lines


def single(lines: dict, word: str) -> str:
    (values,) = lines[word]
    (value,) = values
    return value


@pytest.fixture(scope="module")
def oracle() -> dict[str, tuple[int, int]]:
    return dpkt_sources(SAMPLE)


def test_every_example_has_a_main_guard():
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert scripts == ["dask_local.py", "s3_moto.py", "spark_local.py"]
    for name in scripts:
        assert 'if __name__ == "__main__":' in (EXAMPLES / name).read_text(), name


def test_dask_local(tmp_path, oracle):
    lines = run_example("dask_local.py", tmp_path)
    size = SAMPLE.stat().st_size
    assert int(single(lines, "partitions")) == -(-size // (64 << 10))
    assert int(single(lines, "chunk_packets")) == len(record_lengths(SAMPLE)) == 1000
    assert int(single(lines, "rows")) == 1000
    got = {src: (int(n), int(b)) for src, n, b in lines["src"]}
    assert got == oracle
    assert [src for src, _, _ in lines["src"]] == busiest_first(oracle)


def test_dask_local_takes_a_path(tmp_path):
    # Another capture named on the command line: a big-endian nanosecond
    # pcap of 10 packets shipped in samples/real.
    from conftest import SHIPPED

    path = SHIPPED / "seladb__PcapPlusPlus__nanosecs_big_endian.pcap"
    lines = run_example("dask_local.py", tmp_path, str(path))
    assert int(single(lines, "rows")) == int(single(lines, "chunk_packets")) == 10


def test_spark_local(tmp_path, oracle):
    lines = run_example("spark_local.py", tmp_path)
    assert int(single(lines, "rows")) == 1000
    assert int(single(lines, "survey_rows")) == 1000
    got = {src: int(n) for src, n in lines["src"]}
    assert got == {k: n for k, (n, _) in oracle.items()}
    assert [src for src, _ in lines["src"]] == busiest_first(oracle)


def test_s3_moto(tmp_path, oracle):
    lines = run_example("s3_moto.py", tmp_path)
    assert single(lines, "url") == f"s3://captures/{SAMPLE.name}"
    assert int(single(lines, "rows")) == 1000
    got = {src: int(n) for src, n in lines["src"]}
    assert got == {k: n for k, (n, _) in oracle.items()}
    assert [src for src, _ in lines["src"]] == busiest_first(oracle)
    assert int(single(lines, "open_packets")) == 1000
    assert int(single(lines, "dropin_packets")) == 1000
