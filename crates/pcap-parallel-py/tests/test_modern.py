"""The modern API: info() and top() equal the command line's JSON, the
packet iterator and its zero-copy data, locators, split, flows, filters,
progress with tqdm, file objects, and Ctrl-C."""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dpkt
import pytest
import tqdm

import pcap_parallel
from pcap_parallel.errors import CaptureError, FilterError, FormatError

from conftest import SAMPLE, binary, run, tool


def cli_json(*args) -> dict:
    out = run([binary("pcap-parallel"), *args, "--json", "-q"])
    assert out.returncode == 0, out.stderr.decode()
    return json.loads(out.stdout)


def test_info_equals_the_command_lines_json_on_every_corpus_file(manifest):
    for row in manifest:
        if row["parser_status"] != "ok":
            continue
        path = str(row["path"])
        assert pcap_parallel.open(path).info() == cli_json("info", path), row["file"]


@pytest.mark.parametrize("by", ["src", "dst", "sport", "dport", "proto", "conversation"])
def test_top_equals_the_command_lines_json(manifest, by):
    files = [SAMPLE] + [r["path"] for r in manifest if r["parser_status"] == "ok"][::7]
    for path in files:
        ours = pcap_parallel.open(str(path)).top(by=by, limit=0)
        assert ours == cli_json("top", str(path), "--by", by, "--limit", "0"), path
        assert pcap_parallel.open(str(path)).top(by=by, limit=3)["rows"] == ours["rows"][:3]


def test_info_and_top_by_flow_shards_are_the_same():
    cap = pcap_parallel.open(str(SAMPLE))
    assert cap.info(flows=5)["packets"] == cap.info()["packets"]
    assert cap.top(by="conversation", limit=0, flows=7) == cap.top(by="conversation", limit=0)


def test_packets_have_exact_fields_and_zero_copy_data():
    with open(SAMPLE, "rb") as f:
        raw = f.read()
    with open(SAMPLE, "rb") as f:
        reference = list(dpkt.pcap.Reader(f))
    seen = []
    for chunk in pcap_parallel.open(str(SAMPLE), packets=300).chunks():
        records = memoryview(chunk)
        start, end = chunk.byte_range
        assert records.readonly and records.tobytes() == raw[start:end]
        assert chunk.format == "pcap" and chunk.link_types() == [1]
        for p in chunk.packets():
            data = p.data
            assert isinstance(data, memoryview) and data.readonly
            assert data.obj is p
            # The view points into the chunk's records, at the packet's place.
            assert bytes(data) == raw[p.offset + 16 : p.offset + 16 + p.cap_len]
            assert p.cap_len == len(data) == len(p)
            assert p.link_type == 1 and p.interface_id == 0
            seen.append((p.number, p.ts, bytes(data)))
    assert [n for n, _, _ in seen] == list(range(1, 1001))
    assert [(ts / 1e9, d) for _, ts, d in seen] == [(pytest.approx(t, abs=1e-6), d) for t, d in reference]
    for view in (memoryview(chunk), p.data):
        with pytest.raises(TypeError, match="read-only"):
            view[0:1] = b"x"


def test_chunk_bytes_are_standalone_captures():
    for chunk in pcap_parallel.open(str(SAMPLE), chunks=3).chunks():
        packets = list(dpkt.pcap.Reader(chunk.file()))
        assert len(packets) == chunk.packet_count == len(chunk)
        assert chunk.bytes()[:24] == SAMPLE.read_bytes()[:24]


def test_locators_pickle_small_and_open_elsewhere(tmp_path):
    path = tmp_path / "copy.pcap"
    path.write_bytes(SAMPLE.read_bytes())
    locators = list(pcap_parallel.open(str(path), packets=250).locators())
    assert len(locators) == 4
    for loc in locators:
        blob = pickle.dumps(loc)
        assert len(blob) < 300, len(blob)
        again = pickle.loads(blob)
        assert again == loc and again.path == str(path)
        chunk = again.open()
        assert chunk.first_packet_number == loc.first_packet_number
        assert [p.number for p in chunk.packets()] == list(range(loc.first_packet_number, loc.first_packet_number + 250))
    # The file changed under the locator: refused, never a wrong answer.
    data = bytearray(path.read_bytes())
    start = locators[2].byte_range[0]
    data[start + 8 : start + 12] = (70000).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(CaptureError):
        locators[2].open()


def count_packets(chunk) -> int:
    return sum(1 for _ in chunk.packets())


def source_counter(chunk) -> collections.Counter:
    import ipaddress

    c = collections.Counter()
    for p in chunk.packets():
        eth = dpkt.ethernet.Ethernet(p.data)
        if isinstance(eth.data, dpkt.ip.IP):
            c[str(ipaddress.ip_address(eth.data.src))] += 1
    return c


def test_map_and_imap_run_in_workers_in_file_order(tmp_path):
    cap = pcap_parallel.open(str(SAMPLE), packets=100, workers=2)
    assert cap.map(count_packets) == [100] * 10
    assert list(cap.imap(count_packets)) == [100] * 10
    total = sum(cap.map(source_counter), collections.Counter())
    ipv4 = cap.top(by="src", limit=0)
    assert sum(total.values()) <= ipv4["packets"]
    for row in ipv4["rows"]:
        if "." in row["key"]:
            assert total[row["key"]] == row["packets"]


def test_compressed_input_and_file_objects(tmp_path):
    import gzip

    gz = tmp_path / "s.pcap.gz"
    gz.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    assert pcap_parallel.open(str(gz), packets=64).map(count_packets) == [64] * 15 + [40]
    with open(gz, "rb") as f:
        cap = pcap_parallel.open(f)
        assert cap.count() == 1000
        with pytest.raises(RuntimeError, match="only once"):
            cap.count()
    with gzip.open(gz, "rb") as f:  # a file object of decompressed bytes
        assert pcap_parallel.open(f).info()["packets"] == 1000


def tcpdump_count(path: Path, expr: str) -> int:
    out = subprocess.run([tool("tcpdump"), "-r", str(path), "-w", "-", expr], capture_output=True, check=True)
    return len(list(dpkt.pcap.Reader(io.BytesIO(out.stdout))))


@pytest.mark.parametrize("expr", ["tcp port 80 or udp", "icmp or icmp6", "vlan and ip", "net 10.0.0.0/16"])
def test_filter_equals_tcpdump(expr):
    cap = pcap_parallel.open(str(SAMPLE), filter=expr, packets=111)
    assert cap.count() == sum(cap.map(count_packets)) == tcpdump_count(SAMPLE, expr)


def test_bad_options_are_refused():
    with pytest.raises(FilterError):
        pcap_parallel.open(str(SAMPLE), filter="port port")
    with pytest.raises(ValueError):
        pcap_parallel.open(str(SAMPLE), packets=10, chunks=2)
    with pytest.raises(ValueError):
        pcap_parallel.open(str(SAMPLE), packets=0)
    with pytest.raises(FileNotFoundError):
        pcap_parallel.open("/nonexistent.pcap").count()
    with pytest.raises(pcap_parallel.UnknownFormatError):
        pcap_parallel.open(__file__).count()


def test_max_packets_and_skipping_damage(tmp_path):
    assert pcap_parallel.open(str(SAMPLE), max_packets=123).count() == 123
    offset = next(p.offset for p in pcap_parallel.open(str(SAMPLE)).packets() if p.number == 20)
    data = bytearray(SAMPLE.read_bytes())
    data[offset + 8 : offset + 12] = b"\xff" * 4  # packet 20 claims 4 GiB
    broken = tmp_path / "damaged.pcap"
    broken.write_bytes(bytes(data))
    with pytest.raises(FormatError) as e:
        pcap_parallel.open(str(broken)).count()
    assert (e.value.file, e.value.offset, e.value.packet) == (str(broken), offset, 20)
    skipped = pcap_parallel.open(str(broken), on_error="skip").count()
    assert 19 <= skipped < 1000


def test_split_writes_what_the_command_line_writes(tmp_path):
    ours = pcap_parallel.open(str(SAMPLE), packets=300).split(tmp_path / "py")
    assert [Path(p).name for p in ours] == [f"sample-{i:08}.pcap" for i in range(4)]
    out = run([binary("pcap-parallel"), "split", str(SAMPLE), "-o", tmp_path / "cli", "--packets", "300", "-q"])
    assert out.returncode == 0, out.stderr
    for p in ours:
        assert Path(p).read_bytes() == (tmp_path / "cli" / Path(p).name).read_bytes()
    with pytest.raises(FileExistsError):
        pcap_parallel.open(str(SAMPLE), packets=300).split(tmp_path / "py")
    again = pcap_parallel.open(str(SAMPLE), packets=500).split(tmp_path / "py", force=True, compress="gzip")
    assert len(again) == 2 and all(p.endswith(".pcap.gz") for p in again)


def conversation(p) -> tuple | None:
    """TCP and UDP conversations, both directions alike (fragments, which
    flows keep by datagram, left out)."""
    eth = dpkt.ethernet.Ethernet(p.data)
    ip = eth.data
    if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)) or ip.data.__class__ not in (dpkt.tcp.TCP, dpkt.udp.UDP):
        return None
    if isinstance(ip, dpkt.ip.IP) and (ip.mf or ip.offset):
        return None
    if isinstance(ip, dpkt.ip6.IP6) and ip.extension_hdrs.get(44) is not None:
        return None
    a, b = (ip.src, ip.data.sport), (ip.dst, ip.data.dport)
    return (ip.data.__class__.__name__, min(a, b), max(a, b))


def shard_conversations(shard) -> set:
    return {c for p in shard.packets() if (c := conversation(p)) is not None}


def test_flows_keep_conversations_whole(tmp_path):
    cap = pcap_parallel.open(str(SAMPLE))
    paths = cap.flows(4).write(tmp_path / "flows")
    assert len(paths) == 4
    assert sum(pcap_parallel.open(p).count() for p in paths) == 1000
    per_shard = cap.flows(4).map(shard_conversations)
    seen = collections.Counter(c for s in per_shard for c in s)
    assert seen and all(n == 1 for n in seen.values())


def test_progress_feeds_a_tqdm_bar_and_callables():
    bar = tqdm.tqdm(file=io.StringIO(), disable=False)
    assert pcap_parallel.open(str(SAMPLE), progress=bar).info()["packets"] == 1000
    # Bytes done reach the file's size once it is read to its end.
    assert bar.total == SAMPLE.stat().st_size and bar.n == bar.total
    calls = []
    pcap_parallel.open(str(SAMPLE), packets=100, progress=lambda *a: calls.append(a)).map(count_packets)
    assert calls and calls[-1][2] == 1000 and all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))


INTERRUPTED = textwrap.dedent(
    """
    import os, sys, time
    import pcap_parallel

    def slow(chunk):
        with open(os.path.join(sys.argv[2], str(os.getpid())), "w"):
            pass
        time.sleep(60)

    try:
        if sys.argv[3] == "map":
            pcap_parallel.open(sys.argv[1], packets=10, workers=2).map(slow)
        else:
            pcap_parallel.PCAPParallel(sys.argv[1], callback=slow, split_size=10,
                                       maximum_cores=2).split()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
    """
)


@pytest.mark.parametrize("api", ["map", "PCAPParallel"])
def test_ctrl_c_stops_the_workers(tmp_path, api):
    (tmp_path / "run.py").write_text(INTERRUPTED)
    pids = tmp_path / "pids"
    pids.mkdir()
    proc = subprocess.Popen([sys.executable, "run.py", str(SAMPLE), str(pids), api], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 30
    while len(list(pids.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.05)
    workers = [int(p.name) for p in pids.iterdir()]
    assert len(workers) == 2
    started = time.time()
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to the whole group
    out, err = proc.communicate(timeout=30)
    assert time.time() - started < 10
    assert proc.returncode == 130, err.decode()
    assert out.decode().strip() == "interrupted"
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_ctrl_c_stops_a_run_in_the_library(tmp_path):
    """info() on a pipe that goes silent mid-way: Ctrl-C still stops it."""
    big = tmp_path / "big.pcap"
    subprocess.run([binary("pcap-synth"), "--bytes", "3M", big], check=True, capture_output=True)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    script = textwrap.dedent(
        """
        import sys, pcap_parallel
        try:
            pcap_parallel.open(sys.argv[1], bytes=100_000).info()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(130)
        """
    )
    (tmp_path / "run.py").write_text(script)
    proc = subprocess.Popen([sys.executable, "run.py", str(fifo)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with open(fifo, "wb") as w:
        w.write(big.read_bytes()[: 5 << 19])  # 2.5 MiB, then nothing
        w.flush()
        time.sleep(1.0)
        started = time.time()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert time.time() - started < 5
    assert proc.returncode == 130, err.decode()
    assert out.decode().strip() == "interrupted"
