"""The drop-in: pcap-parallel 0.1's own test scenario and README example,
unchanged, and the rest of its contract (BytesIO chunks, compression,
maximum_count, pcap_filter, errors)."""

from __future__ import annotations

import bz2
import collections
import gzip
import io
import lzma
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dpkt
import lz4.frame
import pytest
import zstandard

import pcap_parallel
from pcap_parallel import PCAPParallel
from pcap_parallel.errors import CaptureError, CaptureWarning, FilterError, FormatError

from conftest import REPO, SAMPLE, run, tool


def sample_packets() -> list[tuple[float, bytes]]:
    with open(SAMPLE, "rb") as f:
        return list(dpkt.pcap.Reader(f))


# The original's test callback, as it is in its repository.
def buffer_callback(pcap_io_buffer):
    count = 0
    pcap = dpkt.pcap.Reader(pcap_io_buffer)
    for packet in pcap:
        count += 1
    return count


def compressed_copies(directory: Path) -> list[Path]:
    """test.pcap and its gzip, bzip2 and xz copies, as the original's test
    expects them; zstd and lz4 besides."""
    data = SAMPLE.read_bytes()
    files = {
        "test.pcap": data,
        "testgz.pcap.gz": gzip.compress(data),
        "testbz2.pcap.bz2": bz2.compress(data),
        "testxz.pcap.xz": lzma.compress(data),
        "testzst.pcap.zst": zstandard.ZstdCompressor().compress(data),
        "testlz4.pcap.lz4": lz4.frame.compress(data),
    }
    for name, content in files.items():
        (directory / name).write_bytes(content)
    return [directory / n for n in files]


def test_the_original_test_scenario(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    compressed_copies(tmp_path)
    expected = len(sample_packets())
    assert expected == 1000
    for test_pcap in ["test.pcap", "testgz.pcap.gz", "testbz2.pcap.bz2", "testxz.pcap.xz",
                      "testzst.pcap.zst", "testlz4.pcap.lz4"]:
        ps = PCAPParallel(test_pcap, split_size=100, callback=buffer_callback, maximum_count=0)
        results = ps.split()
        assert len(results) > 0
        one_result = results[0].result()
        assert isinstance(one_result, int)
        counts = [r.result() for r in results]
        assert counts == [100] * 10, test_pcap
        assert sum(counts) == expected


def test_the_original_readme_example_verbatim_equals_tshark(tmp_path):
    """The original README's example, run as a script unchanged (no
    __main__ guard: it relies on fork, as the original did), prints the same
    source-address counts as tshark."""
    readme = REPO.parent / "shared" / "original" / "pcap-parallel-0.1-README.md"
    shutil.copy(SAMPLE, tmp_path / "test.pcap")
    if readme.is_file():
        code = readme.read_text().split("``` python\n", 1)[1].split("```", 1)[0]
        (tmp_path / "example.py").write_text(code)
        command = [sys.executable, "example.py"]
    else:  # the benchmark's copy of the example, which takes the file as argument
        command = [sys.executable, REPO / "bench" / "original_readme_example.py", "test.pcap"]
    out = run(command, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr.decode()
    ours = {}
    for line in out.stdout.decode().splitlines():
        key, count = line.split()
        ours[key] = int(count)
    theirs = tshark_ipv4_sources(tmp_path / "test.pcap")
    assert sum(theirs.values()) > 500
    assert ours == theirs


def tshark_ipv4_sources(path: Path) -> dict[str, int]:
    """Per source address, the packets whose first network layer is IPv4
    (what the README example counts), as tshark decodes them."""
    out = subprocess.run(
        [tool("tshark"), "-r", str(path), "-T", "fields", "-e", "frame.protocols", "-e", "ip.src"],
        capture_output=True, check=True, text=True,
    ).stdout
    counts: collections.Counter[str] = collections.Counter()
    for line in out.splitlines():
        protocols, _, src = line.partition("\t")
        layers = protocols.split(":")
        first = next((l for l in layers if l in ("ip", "ipv6")), None)
        if first == "ip":
            counts[src.split(",")[0]] += 1
    return dict(counts)


# The example's own callback, for in-process checks below.
def process_partial_pcap(file_handle):
    import ipaddress

    srcs = collections.Counter()
    pcap = dpkt.pcap.Reader(file_handle)
    for timestamp, packet in pcap:
        eth = dpkt.ethernet.Ethernet(packet)
        if isinstance(eth.data, dpkt.ip.IP):
            try:
                srcs[str(ipaddress.ip_address(eth.data.src))] += 1
            except Exception:
                pass
    return srcs


def test_without_a_callback_the_chunks_are_bytesio_captures():
    chunks = PCAPParallel(str(SAMPLE), split_size=300).split()
    assert all(isinstance(c, io.BytesIO) for c in chunks)
    read = [list(dpkt.pcap.Reader(c)) for c in chunks]
    assert [len(r) for r in read] == [300, 300, 300, 100]
    assert [p for r in read for p in r] == sample_packets()


def test_automatic_split_size_and_maximum_cores(tmp_path):
    ps = PCAPParallel(SAMPLE, callback=buffer_callback, maximum_cores=1)
    assert sum(f.result() for f in ps.split()) == 1000


def test_maximum_count_stops_after_that_many_packets():
    results = PCAPParallel(str(SAMPLE), callback=buffer_callback, split_size=100,
                           maximum_count=250).split()
    assert [r.result() for r in results] == [100, 100, 50]


def test_open_maybe_compressed_gives_the_decompressed_bytes_for_five_codecs(tmp_path):
    data = SAMPLE.read_bytes()
    for path in compressed_copies(tmp_path):
        with PCAPParallel.open_maybe_compressed(str(path)) as f:
            assert f.read() == data, path.name
        with PCAPParallel.open_maybe_compressed(path) as f:
            # what the original's users do with it: read it with dpkt
            assert len(list(dpkt.pcap.Reader(f))) == 1000


def test_a_missing_file_is_a_value_error():
    with pytest.raises(ValueError, match="failed to find pcap file"):
        PCAPParallel("/nonexistent/test.pcap", callback=buffer_callback)


def test_pcapng_input_gives_pcapng_chunks(tmp_path):
    path = tmp_path / "sample.pcapng"
    out = run([tool("editcap"), "-F", "pcapng", SAMPLE, path])
    assert out.returncode == 0, out.stderr
    chunks = PCAPParallel(str(path), split_size=250).split()
    assert len(chunks) == 4
    packets = []
    for c in chunks:
        assert c.getvalue()[:4] == b"\x0a\x0d\x0d\x0a"
        packets += [buf for _, buf in dpkt.pcapng.Reader(c)]
    assert packets == [buf for _, buf in sample_packets()]


def kept_by_tcpdump(path: Path, expr: str) -> list[bytes]:
    out = subprocess.run([tool("tcpdump"), "-r", str(path), "-w", "-", expr],
                         capture_output=True, check=True)
    return [buf for _, buf in dpkt.pcap.Reader(io.BytesIO(out.stdout))]


def packets_of_chunk(f: io.BytesIO) -> list[bytes]:
    return [buf for _, buf in dpkt.pcap.Reader(f)]


@pytest.mark.parametrize("expr", ["tcp", "udp and port 53", "ip6", "vlan", "tcp[tcpflags] & tcp-syn != 0",
                                  "not ip", "greater 1000"])
def test_pcap_filter_keeps_what_tcpdump_keeps(expr):
    results = PCAPParallel(str(SAMPLE), callback=packets_of_chunk, split_size=128,
                           pcap_filter=expr).split()
    ours = [p for r in results for p in r.result()]
    assert ours == kept_by_tcpdump(SAMPLE, expr)


def test_a_bad_filter_is_refused():
    with pytest.raises(FilterError):
        PCAPParallel(str(SAMPLE), callback=buffer_callback, pcap_filter="tcp port").split()


def test_a_truncated_capture_warns_after_the_chunks_before_it_and_strict_raises(tmp_path):
    data = SAMPLE.read_bytes()
    offsets = []
    with open(SAMPLE, "rb") as f:
        reader = dpkt.pcap.Reader(f)
        pos = 24
        for _, buf in reader:
            offsets.append(pos)
            pos += 16 + len(buf)
    cut = offsets[733] + 10  # inside packet 734's record header
    broken = tmp_path / "broken.pcap"
    broken.write_bytes(data[:cut])
    for path in (broken, compress_to(broken, tmp_path)):
        with pytest.warns(CaptureWarning) as record:
            results = PCAPParallel(str(path), callback=buffer_callback, split_size=100).split()
        assert [r.result() for r in results] == [100] * 7 + [33]
        (w,) = [r.message for r in record if isinstance(r.message, CaptureWarning)]
        assert (w.file, w.offset, w.packet) == (str(path), offsets[733], 734)
        assert "734" in str(w) and str(offsets[733]) in str(w)
        with pytest.raises(FormatError) as info:
            PCAPParallel(str(path), callback=buffer_callback, split_size=100, strict=True).split()
        e = info.value
        assert e.file == str(path)
        assert e.offset == offsets[733]
        assert e.packet == 734
        assert "734" in str(e) and str(offsets[733]) in str(e)
        assert all(f.done() for f in e.futures)
        assert sum(f.result() for f in e.futures) == 733


def compress_to(path: Path, directory: Path) -> Path:
    out = directory / (path.name + ".gz")
    out.write_bytes(gzip.compress(path.read_bytes()))
    return out


def test_file_objects_are_accepted():
    with open(SAMPLE, "rb") as f:
        results = PCAPParallel(f, callback=buffer_callback, split_size=400).split()
    assert [r.result() for r in results] == [400, 400, 200]


def test_callback_exceptions_stay_in_their_futures():
    results = PCAPParallel(str(SAMPLE), callback=fails_on_second_chunk, split_size=400).split()
    assert results[0].result() == 400
    with pytest.raises(RuntimeError, match="second"):
        results[1].result()
    assert results[2].result() == 200


def fails_on_second_chunk(f):
    packets = list(dpkt.pcap.Reader(f))
    if packets[0] == SECOND_CHUNK_FIRST:
        raise RuntimeError("second chunk")
    return len(packets)


SECOND_CHUNK_FIRST = sample_packets()[400]
