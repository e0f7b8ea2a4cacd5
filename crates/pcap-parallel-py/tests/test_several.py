"""Several capture files read as one (``open([...])``, ``open("day-*.pcap")``):
rotated files cut from the sample by editcap give what the uncut sample
gives, counted by dpkt over the uncut file."""

from __future__ import annotations

import collections
import ipaddress
import shutil
from pathlib import Path

import dpkt
import pytest

import pcap_parallel
from conftest import SAMPLE, run, tool


@pytest.fixture(scope="module")
def rotated(tmp_path_factory) -> list[Path]:
    """The sample cut into four files of 250 packets (as tcpdump -C rotates)."""
    d = tmp_path_factory.mktemp("rotated")
    out = run([tool("editcap"), "-F", "pcap", "-c", "250", SAMPLE, d / "day.pcap"])
    assert out.returncode == 0, out.stderr
    files = sorted(d.glob("day_*.pcap"))
    assert len(files) == 4
    return files


def dpkt_sources(path: Path) -> collections.Counter:
    """Packets per IPv4 or IPv6 source address, as the original README counts
    them (plus IPv6), by dpkt."""
    srcs = collections.Counter()
    with open(path, "rb") as f:
        for _, buf in dpkt.pcap.Reader(f):
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
                srcs[str(ipaddress.ip_address(ip.src))] += 1
    return srcs


def top(cap) -> dict:
    return {r["key"]: r["packets"] for r in cap.top(by="src", limit=0)["rows"]}


def test_a_list_a_pattern_and_time_order_read_the_files_as_one(rotated):
    expected = dpkt_sources(SAMPLE)
    assert top(pcap_parallel.open(SAMPLE)) == expected
    assert top(pcap_parallel.open(rotated)) == expected
    pattern = str(rotated[0].parent / "day_*.pcap")
    cap = pcap_parallel.open(pattern)
    assert [Path(p) for p in cap.paths] == rotated
    result = cap.top(by="src", limit=0)
    assert result["files"] == [str(p) for p in rotated]
    assert {r["key"]: r["packets"] for r in result["rows"]} == expected
    backwards = list(reversed(rotated))
    assert top(pcap_parallel.open(backwards, order="time")) == expected
    assert pcap_parallel.open(rotated, max_packets=600).count() == 600


def test_chunks_run_in_workers_over_several_files(rotated):
    def lengths(path):
        with open(path, "rb") as f:
            return [len(buf) for _, buf in dpkt.pcap.Reader(f)]

    expected = lengths(SAMPLE)
    cap = pcap_parallel.open(rotated, packets=100, workers=2)
    per_chunk = list(cap.map(_chunk_lengths))
    assert [n for chunk in per_chunk for n in chunk] == expected
    # Chunks travel to the workers as byte ranges of their own file.
    locators = list(cap.locators())
    assert [len(loc.open()) for loc in locators] == [100, 100, 50] * 4
    assert [loc.open().first_packet_number for loc in locators] == [1, 101, 201] * 4


def _chunk_lengths(chunk) -> list[int]:
    return [p.cap_len for p in chunk.packets()]


def test_the_table_says_which_file_each_row_comes_from(rotated):
    pytest.importorskip("pyarrow")
    whole = pcap_parallel.open(SAMPLE).to_arrow()
    table = pcap_parallel.open(rotated).to_arrow()
    assert table.column_names[:2] == ["frame_number", "file"]
    assert table.drop_columns(["file", "frame_number"]).equals(whole.drop_columns(["frame_number"]))
    files = table.column("file").to_pylist()
    assert files == [str(p) for p in rotated for _ in range(250)]
    assert table.column("frame_number").to_pylist() == list(range(1, 251)) * 4
    # Chosen columns are kept as chosen.
    chosen = pcap_parallel.open(rotated).to_arrow(columns=["src_ip", "len"])
    assert chosen.column_names == ["src_ip", "len"]


def test_patterns_that_match_nothing_and_stdin_among_files_fail(rotated, tmp_path):
    with pytest.raises(FileNotFoundError):
        pcap_parallel.open(str(tmp_path / "nothing-*.pcap"))
    with pytest.raises(ValueError, match="standard input"):
        pcap_parallel.open([rotated[0], "-"]).count()
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(rotated[0], mixed / "a.pcap")
    (mixed / "b.pcap").write_text("not a capture\n")
    with pytest.raises(pcap_parallel.UnknownFormatError, match=r"b\.pcap.*text"):
        pcap_parallel.open(str(mixed / "*.pcap")).count()
