"""The drop-in against what programs written for pcap-parallel 0.1 do (issue
22): errors that cross process boundaries, damaged captures (every complete
packet before the fault, and a warning), 0.1's argument values, seekable
``open_maybe_compressed``, 0.1's internals used by subclasses, and the
smaller cases (bytes paths, text-mode files, paths with ``[``)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import multiprocessing
import os
import pickle
import re
import subprocess
import sys
import warnings
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import dpkt
import lz4.frame
import pytest
import zstandard

import pcap_parallel
from pcap_parallel import PCAPParallel
from pcap_parallel.errors import (
    CaptureError,
    CaptureWarning,
    DecompressError,
    FilterError,
    FormatError,
    UnknownFormatError,
)

from conftest import REPO, SAMPLE, capture_file, record_offsets


def count_packets(f: io.BytesIO) -> int:
    return sum(1 for _ in dpkt.pcap.Reader(f))


def count_any(f: io.BytesIO) -> int:
    """Packets of a pcap or pcapng chunk."""
    head = f.getvalue()[:4]
    reader = dpkt.pcapng.Reader(f) if head == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
    return sum(1 for _ in reader)


def cut_sample(directory: Path, packet: int, into: int = 10) -> tuple[Path, int]:
    """The sample cut ``into`` bytes into packet ``packet``'s record (1-based):
    a capture whose writer was killed. Returns it and the record's offset."""
    offset = record_offsets(SAMPLE)[packet - 1]
    path = directory / "cut.pcap"
    path.write_bytes(SAMPLE.read_bytes()[: offset + into])
    return path, offset


# -- 1. every exception pickles, also out of a worker process ---------------


def test_every_error_class_pickles_with_its_fields():
    for cls in (CaptureError, FormatError, DecompressError, UnknownFormatError, FilterError,
                CaptureWarning):
        e = cls("trace.pcap: broken", file="trace.pcap", offset=1234, packet=56)
        e.futures = [Future(), Future()]  # live: must stay behind
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is cls
        assert (back.file, back.offset, back.packet) == ("trace.pcap", 1234, 56)
        assert str(back) == "trace.pcap: broken"
        assert getattr(back, "futures", None) is None
    assert issubclass(CaptureError, ValueError)
    assert issubclass(CaptureWarning, UserWarning)


def test_the_errors_the_library_raises_pickle(tmp_path):
    cut, offset = cut_sample(tmp_path, 734)
    raised = []
    with pytest.raises(FormatError) as info:
        PCAPParallel(str(cut), callback=count_packets, split_size=100, strict=True).split()
    assert len(info.value.futures) == 8  # live futures, which do not pickle
    raised.append(info.value)
    text = tmp_path / "notes.txt"
    text.write_text("not a capture\n" * 10)
    with pytest.raises(UnknownFormatError) as info:
        PCAPParallel(str(text), callback=count_packets).split()
    raised.append(info.value)
    with pytest.raises(FilterError) as info:
        PCAPParallel(str(SAMPLE), callback=count_packets, pcap_filter="tcp port").split()
    raised.append(info.value)
    gz = tmp_path / "cut.pcap.gz"
    compressed = gzip.compress(SAMPLE.read_bytes())
    gz.write_bytes(compressed[: len(compressed) // 3])
    with pytest.raises(DecompressError) as info:
        PCAPParallel(str(gz), callback=count_packets, strict=True).split()
    raised.append(info.value)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        PCAPParallel(str(cut), callback=count_packets, split_size=100).split()
    (w,) = [r.message for r in record if isinstance(r.message, CaptureWarning)]
    raised.append(w)
    for e in raised:
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e)
        assert str(back) == str(e)
        assert (back.file, back.offset, back.packet) == (e.file, e.offset, e.packet)
    assert (raised[0].offset, raised[0].packet) == (offset, 734)
    assert raised[1].file == str(text)
    assert raised[3].offset > 0 and raised[3].file == str(gz)


def split_in_worker(path: str, strict: bool, warnings_are_errors: bool = False) -> list[int]:
    """What traffic-taffy does: PCAPParallel(...).split() inside a worker of
    its own ProcessPoolExecutor."""
    with warnings.catch_warnings():
        if warnings_are_errors:
            warnings.simplefilter("error", CaptureWarning)
        ps = PCAPParallel(path, callback=count_packets, split_size=100, maximum_cores=2,
                          strict=strict)
        return [f.result() for f in ps.split()]


def test_split_inside_a_worker_process_gives_the_parent_the_value_error(tmp_path):
    cut, offset = cut_sample(tmp_path, 734)
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 100)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        # The damage: every packet before it, in the worker as in the parent.
        assert pool.submit(split_in_worker, str(cut), False).result() == [100] * 7 + [33]
        with pytest.raises(ValueError) as info:
            pool.submit(split_in_worker, str(cut), True).result()
        e = info.value
        assert type(e) is FormatError
        assert (e.file, e.offset, e.packet) == (str(cut), offset, 734)
        assert e.futures is None
        with pytest.raises(CaptureWarning) as winfo:
            pool.submit(split_in_worker, str(cut), False, True).result()
        assert (winfo.value.file, winfo.value.offset, winfo.value.packet) == (str(cut), offset, 734)
        with pytest.raises(ValueError) as info:
            pool.submit(split_in_worker, str(text), False).result()
        assert type(info.value) is UnknownFormatError and info.value.file == str(text)
        with pytest.raises(ValueError, match="failed to find pcap file"):
            pool.submit(split_in_worker, str(tmp_path / "missing.pcap"), False).result()


# -- 2. damaged captures: the packets before the fault, and a warning --------


def fault_offset(status: str) -> int | None:
    """Where the manifest's reference parser found the fault (None: in the
    file's header, or no offset given)."""
    m = re.search(r"offset (\d+)", status)
    return int(m.group(1)) if m else None


def damaged_rows(manifest: list[dict]) -> tuple[list[dict], list[dict]]:
    """Rows of captures damaged after their header, and of captures whose
    header itself is broken."""
    broken = [r for r in manifest if r["parser_status"].startswith("error")]
    after = [r for r in broken if (fault_offset(r["parser_status"]) or 0) > 0]
    header = [r for r in broken if r not in after]
    return after, header


def test_damaged_captures_of_the_corpus_give_every_packet_before_the_fault(manifest):
    after, _ = damaged_rows(manifest)
    assert len(after) >= 3, [r["file"] for r in after]
    for r in after:
        path = str(r["path"])
        expected = int(r["packets_parser"])
        # libpcap, an independent reader, agrees where it reads the file.
        if r["packets_libpcap"]:
            assert int(r["packets_libpcap"]) == expected, r["file"]
        with pytest.warns(CaptureWarning) as record:
            results = PCAPParallel(path, callback=count_any, split_size=100).split()
        assert sum(f.result() for f in results) == expected, r["file"]
        (w,) = [x.message for x in record if isinstance(x.message, CaptureWarning)]
        assert w.file == path
        assert w.offset == fault_offset(r["parser_status"]), r["file"]
        assert w.packet == expected + 1
        assert f"byte {w.offset}" in str(w) and f"packet {w.packet}" in str(w)
        # Without a callback: the chunks themselves, the same packets as
        # dpkt reads from the file (dpkt also returns the damaged record,
        # cut short or claiming more bytes than there are: not a packet).
        with pytest.warns(CaptureWarning):
            chunks = PCAPParallel(path, split_size=3).split()
        ours = [buf for c in chunks for _, buf in (dpkt.pcapng.Reader(c) if r["format"] == "pcapng"
                                                   else dpkt.pcap.Reader(c))]
        assert len(ours) == expected
        if r["format"] == "pcap":
            theirs = []
            with open(path, "rb") as f:
                try:
                    for _, buf in dpkt.pcap.Reader(f):
                        theirs.append(buf)
                except dpkt.NeedData:
                    pass
            assert ours == theirs[:expected], r["file"]
        with pytest.raises(FormatError) as info:
            PCAPParallel(path, callback=count_any, split_size=100, strict=True).split()
        assert (info.value.offset, info.value.packet) == (w.offset, w.packet)
        assert sum(f.result() for f in info.value.futures) == expected


def test_a_cut_short_tail_of_a_large_capture(tmp_path):
    """The commonest damage: tcpdump killed while writing. The corpus' cut
    capture (2,696 packets, 1 byte of the next record header), read as
    0.1's programs read it, also compressed."""
    path = capture_file("OISF__suricata-verify__tests--http-mime-truncated--input.pcap")
    data = path.read_bytes()
    whole = tmp_path / "whole.pcap"
    whole.write_bytes(data[:-1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expected = [f.result() for f in PCAPParallel(str(whole), callback=count_packets).split()]
    assert sum(expected) == 2696
    copies = {"cut.pcap": data, "cut.pcap.gz": gzip.compress(data),
              "cut.pcap.zst": zstandard.ZstdCompressor().compress(data)}
    for name, content in copies.items():
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.warns(CaptureWarning) as record:
            results = PCAPParallel(str(p), callback=count_packets).split()
        assert sum(f.result() for f in results) == 2696, name
        (w,) = [x.message for x in record if isinstance(x.message, CaptureWarning)]
        assert (w.offset, w.packet) == (len(data) - 1, 2697), name


def test_a_truncated_compressed_stream_warns_too(tmp_path):
    data = SAMPLE.read_bytes()
    gz = tmp_path / "cut.pcap.gz"
    compressed = gzip.compress(data)
    gz.write_bytes(compressed[: len(compressed) // 2])
    with pytest.warns(CaptureWarning) as record:
        results = PCAPParallel(str(gz), callback=count_packets, split_size=50).split()
    (w,) = [x.message for x in record if isinstance(x.message, CaptureWarning)]
    assert isinstance(w.error, DecompressError)
    n = sum(f.result() for f in results)
    assert 0 < n < 1000
    # Every packet whose bytes were decompressed before the fault.
    offsets = record_offsets(SAMPLE) + [len(data)]
    assert n == sum(1 for i in range(1000) if offsets[i + 1] <= w.offset)


def test_w_error_turns_the_warning_into_an_exception(tmp_path):
    cut, offset = cut_sample(tmp_path, 500)
    code = ("from pcap_parallel import PCAPParallel\n"
            "import dpkt\n"
            "def n(f):\n    return sum(1 for _ in dpkt.pcap.Reader(f))\n"
            f"r = PCAPParallel({str(cut)!r}, callback=n, split_size=100).split()\n"
            "print(sum(f.result() for f in r))\n")
    script = tmp_path / "prog.py"
    script.write_text(code)
    plain = subprocess.run([sys.executable, script], capture_output=True, text=True, cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == "499"
    assert "CaptureWarning" in plain.stderr and f"byte {offset} (packet 500)" in plain.stderr
    # (-W error::pcap_parallel.CaptureWarning does not work from site-packages:
    # Python reads -W before site-packages is on its path.)
    for option in ("error", "error::UserWarning"):
        out = subprocess.run([sys.executable, "-W", option, script], capture_output=True, text=True,
                             cwd=tmp_path)
        assert out.returncode == 1, option
        assert out.stdout == ""
        assert "pcap_parallel.errors.CaptureWarning" in out.stderr, out.stderr


def test_what_is_not_a_capture_still_raises_a_value_error(tmp_path, manifest):
    text = tmp_path / "notes.txt"
    text.write_text("not a capture\n" * 10)
    for cb in (count_packets, None):
        with pytest.raises(UnknownFormatError):
            PCAPParallel(str(text), callback=cb).split()
    short = tmp_path / "short.pcap"
    short.write_bytes(SAMPLE.read_bytes()[:20])  # the file header cut short
    with pytest.raises(ValueError):
        PCAPParallel(str(short), callback=count_packets).split()
    _, header = damaged_rows(manifest)
    assert header, "the manifest lists captures whose header is broken"
    for r in header:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError):
                PCAPParallel(str(r["path"]), callback=count_any).split()


# -- 3. 0.1's argument values ----------------------------------------------


def test_maximum_count_minus_one_is_all_packets_and_negative_split_size_its_size():
    # 0.1 passed maximum_count to dpkt's dispatch, where 0 or less is all;
    # it cut a chunk when packets_read % split_size == 0, so -5 is 5.
    for maximum_count in (-1, -7, 0, None):
        results = PCAPParallel(str(SAMPLE), callback=count_packets, split_size=250,
                               maximum_count=maximum_count).split()
        assert [f.result() for f in results] == [250] * 4, maximum_count
    results = PCAPParallel(str(SAMPLE), callback=count_packets, split_size=-5,
                           maximum_count=-1).split()
    assert [f.result() for f in results] == [5] * 200
    chunks = PCAPParallel(str(SAMPLE), split_size=-5, maximum_count=23).split()
    assert [count_packets(c) for c in chunks] == [5, 5, 5, 5, 3]
    # traffic-taffy passes split_size=None.
    results = PCAPParallel(str(SAMPLE), callback=count_packets, split_size=None,
                           maximum_count=-1).split()
    assert sum(f.result() for f in results) == 1000


# -- 4. open_maybe_compressed seeks and tells ------------------------------


def compressed_copies(directory: Path) -> dict[str, Path]:
    data = SAMPLE.read_bytes()
    files = {
        "none": ("t.pcap", data),
        "gzip": ("t.pcap.gz", gzip.compress(data)),
        "bzip2": ("t.pcap.bz2", bz2.compress(data)),
        "xz": ("t.pcap.xz", lzma.compress(data)),
        "zstd": ("t.pcap.zst", zstandard.ZstdCompressor().compress(data)),
        "lz4": ("t.pcap.lz4", lz4.frame.compress(data)),
    }
    out = {}
    for codec, (name, content) in files.items():
        (directory / name).write_bytes(content)
        out[codec] = directory / name
    return out


def test_open_maybe_compressed_seeks_and_tells_forward_and_backward(tmp_path):
    data = SAMPLE.read_bytes()
    types = {"none": io.BufferedReader, "gzip": gzip.GzipFile, "bzip2": bz2.BZ2File,
             "xz": lzma.LZMAFile, "zstd": io.BufferedReader, "lz4": io.BufferedReader}
    for codec, path in compressed_copies(tmp_path).items():
        with PCAPParallel.open_maybe_compressed(str(path)) as f:
            assert isinstance(f, types[codec]), codec
            assert f.seekable(), codec
            assert f.read(24) == data[:24]
            assert f.tell() == 24
            assert f.seek(300_000) == 300_000 and f.tell() == 300_000
            assert f.read(1000) == data[300_000:301_000], codec
            assert f.seek(100) == 100  # backward
            assert f.read(50) == data[100:150], codec
            assert f.tell() == 150
            assert f.seek(-40, io.SEEK_CUR) == 110
            assert f.read(10) == data[110:120]
            assert f.seek(-10, io.SEEK_END) == len(data) - 10, codec
            assert f.read() == data[-10:]
            assert f.tell() == len(data)
            f.seek(0)
            # What 0.1's users do: read it with dpkt, rewind, read it again.
            assert len(list(dpkt.pcap.Reader(f))) == 1000
            f.seek(0)
            assert f.read() == data, codec
        assert PCAPParallel.open_maybe_compressed(path).read(4) == data[:4]


# -- 5. 0.1's internals, for subclasses ------------------------------------


class CountingExecutor(ThreadPoolExecutor):
    submitted = 0

    def submit(self, fn, *args, **kwargs):
        CountingExecutor.submitted += 1
        return super().submit(fn, *args, **kwargs)


class OwnSplitSize(PCAPParallel):
    """A subclass of 0.1's kind: its own split size and its own pool."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.process_pool = CountingExecutor(max_workers=2)

    def set_split_size(self):
        self.split_size = 300


def test_subclasses_using_the_internals_of_0_1(tmp_path):
    CountingExecutor.submitted = 0
    ps = OwnSplitSize(str(SAMPLE), callback=count_packets)
    results = ps.split()
    assert [f.result() for f in results] == [300, 300, 300, 100]
    assert CountingExecutor.submitted >= 4  # the subclass' pool ran them
    assert ps.results is results
    assert ps.packets_read == 1000
    assert ps.header == SAMPLE.read_bytes()[:24]
    gz = tmp_path / "t.pcap.gz"
    gz.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    ps = PCAPParallel(str(gz), callback=count_packets)
    assert ps.header is None and ps.packets_read == 0
    assert sum(f.result() for f in ps.split()) == 1000
    assert ps.header == SAMPLE.read_bytes()[:24]
    assert ps.packets_read == 1000
    # process_pool exists before split(), as 0.1's did, and split() uses it.
    ps = PCAPParallel(str(SAMPLE), callback=count_packets, split_size=500, maximum_cores=1)
    assert ps.process_pool.submit(os.getpid).result() != os.getpid()
    assert [f.result() for f in ps.split()] == [500, 500]
    # set_split_size: 0.1's arithmetic (at least 1,000 packets).
    ps = PCAPParallel(str(SAMPLE), maximum_cores=1)
    ps.set_split_size()
    assert ps.split_size == 1000
    ps = PCAPParallel(str(SAMPLE), maximum_cores=1, maximum_count=4000)
    ps.set_split_size()
    assert ps.split_size == 4000
    assert PCAPParallel(str(SAMPLE), split_size=7).set_split_size() == 7


def test_a_subclass_relying_on_the_serial_scan_is_told_so():
    class PerPacket(PCAPParallel):
        def dpkt_callback(self, timestamp, packet):
            pass

    with pytest.raises(NotImplementedError, match="dpkt_callback"):
        PerPacket(str(SAMPLE), callback=count_packets).split()


# -- 14. bytes paths, text-mode files, paths with [ -------------------------


def test_a_bytes_path_is_a_path(tmp_path):
    results = PCAPParallel(os.fsencode(SAMPLE), callback=count_packets, split_size=400).split()
    assert [f.result() for f in results] == [400, 400, 200]
    with pytest.raises(ValueError, match="failed to find pcap file"):
        PCAPParallel(b"/nonexistent/x.pcap")
    with pytest.raises(TypeError, match="path"):
        PCAPParallel(1234)


def test_a_text_mode_file_object_is_a_clear_type_error():
    with open(SAMPLE) as f, pytest.raises(TypeError, match="binary mode"):
        PCAPParallel(f, callback=count_packets)
    with pytest.raises(TypeError, match="binary mode"):
        PCAPParallel(io.StringIO("abc"))
    # The modern API too (was OSError [Errno 0]).
    with open(SAMPLE) as f, pytest.raises(TypeError, match="binary mode"):
        pcap_parallel.open(f).count()


def test_a_path_with_brackets_that_exists_is_read_literally(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    other = capture_file("seladb__PcapPlusPlus__VlanPackets.pcap")
    (tmp_path / "br[1].pcap").write_bytes(SAMPLE.read_bytes())
    (tmp_path / "br1.pcap").write_bytes(other.read_bytes())
    for name in ("br[1].pcap", str(tmp_path / "br[1].pcap")):
        results = PCAPParallel(name, callback=count_packets).split()
        assert sum(f.result() for f in results) == 1000
        assert pcap_parallel.open(name).count() == 1000
    assert pcap_parallel.open("br1.pcap").count() == 26


# -- 3, against 0.1 itself --------------------------------------------------

ORIGINAL_DIR = REPO / "target" / "pcap-parallel-0.1"


@pytest.fixture(scope="module")
def original() -> dict[str, str]:
    """An environment whose ``pcap_parallel`` is the real 0.1 (pure Python,
    installed once under target/ without dependencies: dpkt is here)."""
    from test_dropin_taffy import pip_target

    pip_target("pcap-parallel==0.1", ORIGINAL_DIR)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ORIGINAL_DIR)
    return env


CHUNK_COUNTS = """
import json, sys, dpkt
from pcap_parallel import PCAPParallel
def n(f):
    return sum(1 for _ in dpkt.pcap.Reader(f))
out = []
for split_size, maximum_count in json.loads(sys.argv[2]):
    r = PCAPParallel(sys.argv[1], callback=n, split_size=split_size,
                     maximum_count=maximum_count).split()
    out.append([f.result() for f in r])
print(json.dumps(out))
"""


def test_split_size_and_maximum_count_as_0_1_runs_them(original, tmp_path):
    import json

    cases = [[-5, -1], [-5, 23], [100, 0], [250, -1], [-7, -3], [333, 900], [100, 1000]]
    script = tmp_path / "counts.py"
    script.write_text(CHUNK_COUNTS)
    out = subprocess.run([sys.executable, script, SAMPLE, json.dumps(cases)], capture_output=True,
                         text=True, env=original, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr
    theirs = json.loads(out.stdout)
    check = subprocess.run([sys.executable, "-c", "import pcap_parallel; print(pcap_parallel.__file__)"],
                           capture_output=True, text=True, env=original)
    assert str(ORIGINAL_DIR) in check.stdout  # that was 0.1
    for (split_size, maximum_count), their_counts in zip(cases, theirs):
        ours = [f.result() for f in PCAPParallel(str(SAMPLE), callback=count_packets,
                                                 split_size=split_size,
                                                 maximum_count=maximum_count).split()]
        # 0.1 always ended with one more chunk: what followed the last full
        # one, the header alone when nothing did.
        if their_counts[-1] == 0:
            their_counts = their_counts[:-1]
        assert ours == their_counts, (split_size, maximum_count)


def test_a_named_pipe_is_read_once_whole(tmp_path):
    """header is read from regular files only: from a pipe, reading it
    would take the capture's first bytes from the split."""
    import threading

    fifo = tmp_path / "fifo.pcap"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as f:
            f.write(SAMPLE.read_bytes())

    writer = threading.Thread(target=write)
    writer.start()
    try:
        ps = PCAPParallel(str(fifo), callback=count_packets, split_size=300)
        assert [f.result() for f in ps.split()] == [300, 300, 300, 100]
    finally:
        writer.join(timeout=30)
    assert ps.header is None and ps.packets_read == 1000
