"""Byte-range partitions from Python (pcap_parallel.partition): read one at
a time, verified by the driver, exactly the sequential reading; a partition
read through a file-like object reads only its range."""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import struct
import subprocess

import pytest

import pcap_parallel
from pcap_parallel import _native
from pcap_parallel import partition as pp
from conftest import SAMPLE, Fingerprint, capture_file

# These tests cut small captures at many boundaries: below the floor that
# protects users from tiny partitions (64 KiB). Set before any cluster starts
# (its workers inherit it); test_partition_size_has_bounds unsets it.
os.environ.setdefault("PCAP_PARALLEL_MIN_PARTITION_BYTES", "1")


def read_all(path, size: int) -> tuple[Fingerprint, int, list[int]]:
    """Every partition read here, verified; the packets fingerprinted."""
    parts = pp.partitions(path, size)
    reads = {}

    def first():
        for part in parts:
            r = pp.read(part)
            yield r.report, r

    def recompute(part, entry):
        r = pp.read(part, entry)
        return r.report, r

    verified = pp.verify(parts, first(), recompute)
    fp = Fingerprint()
    numbers = []
    for r, first_number in zip(verified, verified.first_packet_numbers):
        for p in r.chunk(first_number - 1).packets():
            fp.add_packet(p)
            numbers.append(p.number)
    return fp, verified.recomputed, numbers


def compressed_row(manifest) -> dict:
    """A compressed capture of the manifest that reads whole (a gzip one
    when there is one: samples/real has only zstd)."""
    rows = [r for r in manifest if r["compression"] != "none" and r["parser_status"] == "ok"]
    assert rows, "the manifest lists no compressed capture"
    return sorted(rows, key=lambda r: r["compression"] != "gzip")[0]


def well_formed(manifest, max_size=None):
    return [
        r
        for r in manifest
        if r["parser_status"] == "ok"
        and r["compression"] == "none"
        and (max_size is None or int(r["size_bytes"]) <= max_size)
    ]


def test_partitions_are_plain_picklable_data():
    parts = pp.partitions(SAMPLE, 1000)
    size = SAMPLE.stat().st_size
    assert [p.index for p in parts] == list(range(len(parts)))
    assert parts[0].start == 0 and parts[-1].end == size
    assert all(a.end == b.start for a, b in zip(parts, parts[1:]))
    assert pickle.loads(pickle.dumps(parts)) == parts
    assert pcap_parallel.partitions(str(SAMPLE), 1000) == parts


@pytest.mark.parametrize("size", [97, 1024, 64 << 10])
def test_every_well_formed_corpus_file_in_partitions(manifest, shared_corpus, size):
    # 97-byte partitions of the megabyte files are tens of thousands of
    # calls each: the Rust tests cover those; here the files up to 256 KiB.
    rows = well_formed(manifest, 256 << 10 if size == 97 else None)
    assert len(rows) > (40 if shared_corpus else 17)
    for row in rows:
        fp, _, numbers = read_all(row["path"], size)
        assert fp.packets == int(row["packets_parser"]), row["file"]
        assert fp.data.hexdigest() == row["data_sha256"], (row["file"], size)
        assert fp.records.hexdigest() == row["records_sha256"], (row["file"], size)
        assert numbers == list(range(1, fp.packets + 1)), row["file"]


def embedded_pcap(packets: int = 40, inner: int = 60) -> bytes:
    """A pcap whose packets each hold a whole pcap of `inner` records: its
    headers look like records everywhere, so partitions' guesses are fooled."""

    def record(ts: int, data: bytes) -> bytes:
        return struct.pack("<IIII", ts, 0, len(data), len(data)) + data

    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    body = head + b"".join(record(1000 + i, bytes([i]) * (20 + i % 7)) for i in range(inner))
    return head + b"".join(record(1_600_000_000 + i, body) for i in range(packets))


def test_payloads_that_hold_captures_are_recomputed_and_exact(tmp_path):
    path = tmp_path / "embedded.pcap"
    path.write_bytes(embedded_pcap())
    sequential = Fingerprint()
    for p in pcap_parallel.open(str(path), workers=1).packets():
        sequential.add_packet(p)
    assert sequential.packets == 40
    for size in (97, 700, 1024):
        fp, recomputed, _ = read_all(path, size)
        assert recomputed > 0, f"no guess was fooled at {size}"
        assert (fp.packets, fp.data.hexdigest(), fp.records.hexdigest()) == (
            sequential.packets,
            sequential.data.hexdigest(),
            sequential.records.hexdigest(),
        )


def damaged_sample(tmp_path, number: int = 300):
    data = bytearray(SAMPLE.read_bytes())
    off = 24
    for _ in range(1, number):
        off += 16 + struct.unpack_from("<I", data, off + 8)[0]
    struct.pack_into("<I", data, off + 8, 0x7FFF0000)
    path = tmp_path / "damaged.pcap"
    path.write_bytes(bytes(data))
    return path, off


def test_damage_gives_the_packets_before_it_then_the_error(tmp_path):
    path, off = damaged_sample(tmp_path)
    with pytest.raises(pcap_parallel.FormatError) as sequential:
        pcap_parallel.open(str(path)).count()
    parts = pp.partitions(path, 1024)
    with pytest.raises(pcap_parallel.FormatError) as e:
        pp.verify(parts, ((pp.read(p).report, p) for p in parts), lambda p, en: (pp.read(p, en).report, p))
    assert (e.value.file, e.value.offset, e.value.packet) == (str(path), off, 300)
    assert str(e.value) == str(sequential.value)
    # The partitions before the fault, and the one holding it.
    assert e.value.results[-1].start <= off < e.value.results[-1].end


def test_a_surveys_tables_trust_its_ends_and_check_its_counts(tmp_path):
    # A sound capture: every planned partition carries its verified end, and
    # the tables read from there are the whole capture's table.
    path = tmp_path / "sample.pcap"
    path.write_bytes(SAMPLE.read_bytes())
    plan = pp.survey_local(pp.partitions(path, 4096))
    assert len(plan) > 5 and plan.error is None
    assert all(p.exit is not None and p.exit[0] > p.entry[0] for p in plan)
    assert [p.exit for p in plan[:-1]] == [p.entry for p in plan[1:]]
    import pyarrow as pa

    whole = pcap_parallel.open(str(path)).to_arrow()
    assert pa.concat_tables(pp.read_table(p) for p in plan).equals(whole)

    # A damaged one: the partition with the fault is walked again (no
    # trusted end), its rows are those before the fault.
    damaged, _off = damaged_sample(tmp_path)
    bad = pp.survey_local(pp.partitions(damaged, 4096))
    assert isinstance(bad.error, pcap_parallel.FormatError)
    assert bad[-1].exit is None and all(p.exit is not None for p in bad[:-1])
    assert sum(pp.read_table(p).num_rows for p in bad) == 299

    # The capture rewritten in place after the survey (a record header
    # spoiled): the partition's table falls short of the survey's count.
    victim = plan[len(plan) // 2]
    data = bytearray(path.read_bytes())
    at = victim.entry[0]
    for _ in range(victim.packets // 2):
        at += 16 + struct.unpack_from("<I", data, at + 8)[0]
    struct.pack_into("<I", data, at + 8, 0x7FFF0000)
    path.write_bytes(bytes(data))
    with pytest.raises(pcap_parallel.CaptureError, match="changed since it was partitioned"):
        pp.read_table(victim)
    # Without an identity to compare (a plan from before they were kept),
    # the count still tells.
    unchecked = dataclasses.replace(victim, part=dataclasses.replace(victim.part, identity=None))
    with pytest.raises(RuntimeError, match="the survey found"):
        pp.read_table(unchecked)


class Counting(io.RawIOBase):
    """A file-like object that counts the bytes read from it."""

    def __init__(self, data: bytes):
        self.f = io.BytesIO(data)
        self.ranges: list[tuple[int, int]] = []

    def seek(self, pos, whence=0):
        return self.f.seek(pos, whence)

    def read(self, n=-1):
        at = self.f.tell()
        got = self.f.read(n)
        self.ranges.append((at, len(got)))
        return got


def test_a_partition_through_a_file_object_reads_only_its_range(manifest):
    # 2.7 MB, shipped in samples/real: three partitions of 1 MiB.
    row = next(r for r in manifest if r["file"] == "seladb__PcapPlusPlus__http-packets.pcap")
    data = row["path"].read_bytes()
    size = len(data)
    ranges = _native.partition_ranges(size, 1 << 20)
    assert len(ranges) >= 3
    index, start, end = ranges[1]
    f = Counting(data)
    r = _native.read_partition((f, "example.pcap", size), index, start, end)
    local = _native.read_partition(str(row["path"]), index, start, end)
    assert r.report == local.report and r.report[3] > 0
    read = sum(n for _, n in f.ranges)
    assert read < (end - start) + (256 << 10), f"{read} bytes for a 1 MiB partition"
    assert all(at == 0 or at >= start for at, _ in f.ranges)


def test_compressed_captures_are_one_whole_partition(manifest):
    row = compressed_row(manifest)
    parts = pp.partitions(row["path"], 1024)
    assert len(parts) == 1 and parts[0].whole
    counts = pp.map_whole(lambda f: sum(1 for _ in pcap_parallel.open(f).packets()), parts[0])
    assert sum(counts) == int(row["packets_parser"])


def several_sections(tmp_path):
    """Three pcapng sections of two byte orders, one after another (as
    `cat a.pcapng b.pcapng a.pcapng` makes): later partitions need the
    state of a section they do not see the start of. Both files are shipped
    in samples/real (and are in the corpus)."""
    one = capture_file("hadrielk__pcapng-test-generator__output_le--difficult--test202.pcapng").read_bytes()
    two = capture_file("hadrielk__pcapng-test-generator__output_be--advanced--test102.pcapng").read_bytes()
    path = tmp_path / "sections.pcapng"
    path.write_bytes(one + two + one)
    return path


# --- Format detection is the library's (issue 22, item 10) -----------------


def recompressed(tmp_path, tool: str) -> "os.PathLike":
    """SAMPLE compressed by ``pzstd`` (which starts with a skippable frame)
    or ``lz4 -l`` (the legacy format)."""
    if tool == "pzstd":
        out = tmp_path / "sample.pcap.pzst"
        subprocess.run(["pzstd", "-q", "-p", "2", "-o", str(out), str(SAMPLE)], check=True)
        assert out.read_bytes()[:4] == b"\x50\x2a\x4d\x18"
    else:
        out = tmp_path / "sample.pcap.lz4l"
        subprocess.run(["lz4", "-q", "-l", str(SAMPLE), str(out)], check=True)
        assert out.read_bytes()[:4] == b"\x02\x21\x4c\x18"
    return out


@pytest.mark.parametrize("tool", ["pzstd", "lz4 -l"])
def test_pzstd_and_legacy_lz4_captures_are_one_whole_partition(tmp_path, tool):
    path = recompressed(tmp_path, tool.split()[0])
    expected = pcap_parallel.open(str(SAMPLE)).to_arrow()
    assert pcap_parallel.open(str(path)).to_arrow().equals(expected)
    parts = pp.partitions(path, 64 << 10)
    assert len(parts) == 1 and parts[0].whole, parts
    plan = pp.survey_local(parts)
    assert plan.error is None and [p.packets for p in plan] == [expected.num_rows]
    assert pp.read_table(plan[0]).equals(expected)
    fp = Fingerprint()
    for f in pp.map_whole(lambda f: f.getvalue(), parts[0]):
        for p in pcap_parallel.open(io.BytesIO(f)).packets():
            fp.add_packet(p)
    assert fp.packets == expected.num_rows


def test_python_asks_the_library_what_a_file_is(manifest):
    assert not hasattr(pp, "_COMPRESSED")
    seen = set()
    for row in manifest:
        with open(row["path"], "rb") as f:
            head = f.read(_native.DETECT_LEN)
        compression, fmt = _native.detect_format(head)
        assert compression == row["compression"], row["file"]
        if compression == "none" and row["format"] in ("pcap", "pcapng"):
            assert fmt == row["format"], row["file"]
        seen.add(compression)
    assert _native.detect_format(b"GIF89a") == ("none", None)
    assert _native.detect_format(b"\x0a\x0d\x0d\x0a\x1c\x00") == ("none", "pcapng")
    assert "none" in seen and len(seen) > 1


# --- Bounded partition sizes (issue 22, item 11) ----------------------------


def test_partition_size_has_bounds(monkeypatch):
    monkeypatch.delenv("PCAP_PARALLEL_MIN_PARTITION_BYTES", raising=False)
    for bad in (0, 1, -5, 1000, (64 << 10) - 1, (1 << 40) + 1):
        with pytest.raises(ValueError, match=r"between 65536 and 1099511627776 bytes"):
            pp.partitions(SAMPLE, bad)
    with pytest.raises(ValueError, match="partition_size must be between"):
        pp.partitions_of([str(SAMPLE)], 0)
    for bad in (1.5, None, True):
        with pytest.raises(TypeError, match="whole number"):
            pp.partitions(SAMPLE, bad)
    with pytest.raises(ValueError, match="whole number"):
        pp.partitions(SAMPLE, "lots")
    parts = pp.partitions(SAMPLE, 64 << 10)
    assert len(parts) == -(-SAMPLE.stat().st_size // (64 << 10)) == 6
    assert len(pp.partitions(SAMPLE, 1 << 40)) == 1
    assert pp.partitions(SAMPLE, "65536") == parts
    # The floor can be lowered (for tests), never below 1.
    monkeypatch.setenv("PCAP_PARALLEL_MIN_PARTITION_BYTES", "0")
    with pytest.raises(ValueError, match="between 1 and"):
        pp.partitions(SAMPLE, 0)


# --- Entries past the end of the file (issue 22, item 8) --------------------


def test_an_entry_past_the_end_is_the_file_changed_error_not_a_panic(tmp_path):
    path = tmp_path / "cap.pcap"
    path.write_bytes(SAMPLE.read_bytes())
    size = path.stat().st_size
    parts = pp.partitions(path, 64 << 10)
    report = pp.read(parts[1]).report
    offset, context = report[1]
    for entry in [(size + 4096, context), (size + 1, context), (1 << 62, context)]:
        with pytest.raises(pcap_parallel.CaptureError, match="changed"):
            pp.read(parts[1], entry)
        with pytest.raises(pcap_parallel.CaptureError, match="changed"):
            pp.read(parts[1], report[1], ((entry[0], context), 10))
    # A partition cut from a longer file.
    beyond = pp.Partition(str(path), 9, size + 100, size + 200, size + 200)
    with pytest.raises(pcap_parallel.CaptureError, match="changed"):
        pp.read(beyond)
    # Truncated after the survey: the verified read of the last partition.
    plan = pp.survey_local(parts)
    with open(path, "r+b") as f:
        f.truncate(size - 5000)
    with pytest.raises(pcap_parallel.CaptureError, match="changed"):
        pp.read_table(plan[-1])


# --- A file rewritten between partitioning and reading (item 9) -------------


def shifted(data: bytes, seconds: int = 3600) -> bytes:
    """A little-endian microsecond pcap with every timestamp moved by
    ``seconds``: the same size, other rows."""
    out = bytearray(data)
    off = 24
    while off + 16 <= len(out):
        ts, incl = struct.unpack_from("<I4xI", out, off)
        struct.pack_into("<I", out, off, ts + seconds)
        off += 16 + incl
    assert off == len(out)
    return bytes(out)


def rewrite_in_place(path, data: bytes) -> None:
    """Writes ``data`` over the file (same inode, same size), as an editor
    or `dd conv=notrunc` would."""
    before = os.stat(path)
    assert before.st_size == len(data)
    with open(path, "r+b") as f:
        f.write(data)
    after = os.stat(path)
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)


@pytest.mark.parametrize("how", ["in place", "replaced"])
def test_a_same_size_rewrite_after_the_survey_is_an_error_not_other_rows(tmp_path, how):
    path = tmp_path / "cap.pcap"
    path.write_bytes(SAMPLE.read_bytes())
    plan = pp.survey_local(pp.partitions(path, 64 << 10))
    first = pp.read_table(plan[0])
    assert first.num_rows == plan[0].packets
    new = shifted(SAMPLE.read_bytes())
    if how == "in place":
        rewrite_in_place(path, new)
    else:
        (tmp_path / "tmp").write_bytes(new)
        os.utime(tmp_path / "tmp", ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns))
        os.replace(tmp_path / "tmp", path)  # another inode, same size and mtime
    for planned in plan:
        with pytest.raises(pcap_parallel.CaptureError, match="changed since it was partitioned") as e:
            pp.read_table(planned)
        assert e.value.file == str(path)
    parts = pp.partitions(path, 64 << 10)
    assert parts == pp.partitions(path, 64 << 10) and parts[0].identity != plan[0].part.identity
    with pytest.raises(pcap_parallel.CaptureError, match="changed since"):
        pp.read(plan[1].part)
    # Partitioned again: the new rows.
    again = pp.survey_local(parts)
    assert pp.read_table(again[0])["ts"].to_pylist()[0] != first["ts"].to_pylist()[0]


def test_what_a_rewrite_that_restores_the_mtime_in_place_escapes(tmp_path):
    # Documented as not detected: same inode, same size, and the old
    # modification time put back (touch -d, a restore that keeps times).
    path = tmp_path / "cap.pcap"
    path.write_bytes(SAMPLE.read_bytes())
    plan = pp.survey_local(pp.partitions(path, 64 << 10))
    st = os.stat(path)
    rewrite_in_place(path, shifted(SAMPLE.read_bytes()))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    rows = pp.read_table(plan[0])
    assert rows.num_rows == plan[0].packets
    want = pcap_parallel.open(str(path)).to_arrow().slice(0, rows.num_rows)
    assert rows["ts"].equals(want["ts"])  # the new file's rows, not an error


# --- Reports carry what the next partition needs (item 12) -------------------


def many_interfaces(tmp_path, interfaces: int = 20_000, packets: int = 3000, more_at: int = 1500):
    """A little-endian pcapng section with ``interfaces`` interface
    descriptions (400 KB of state), then ``packets`` packets on them, and
    halfway a second batch of 1000 interfaces (a state change inside a
    partition)."""
    import random

    rnd = random.Random(7)

    def block(kind: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", kind, n) + body + struct.pack("<I", n)

    def idb() -> bytes:
        return block(1, struct.pack("<HHI", 1, 0, 65535))

    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
    out += [idb() for _ in range(interfaces)]
    known = interfaces
    for i in range(packets):
        if i == more_at:
            out += [idb() for _ in range(1000)]
            known += 1000
        data = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(40, 400)))
        ts = 1_700_000_000_000_000 + i
        iface = rnd.randrange(known)
        out.append(block(6, struct.pack("<IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) + data))
    path = tmp_path / "interfaces.pcapng"
    path.write_bytes(b"".join(out))
    return path


def test_reports_carry_a_bounded_state_not_the_interface_table(tmp_path):
    path = many_interfaces(tmp_path)
    size = path.stat().st_size
    parts = pp.partitions(path, 64 << 10)
    assert len(parts) > 15 and size > 1 << 20
    reports = [pp.read(part).report for part in parts]
    sizes = [len(pickle.dumps(r)) for r in reports]
    # The 400 KB state of the section's head is named, never carried: a
    # report carries at most the state blocks inside its own range (before,
    # every report carried the whole table, twice: 800 KB each).
    assert all(n <= part.end - part.start + 2048 for part, n in zip(parts, sizes)), sizes
    head_end = 28 + 20 * 20_000
    after = [n for part, n in zip(parts, sizes) if part.start > head_end]
    # Past the head: all but the partition(s) holding the 1,000 interfaces
    # added halfway are under a kilobyte.
    assert len(after) > 10 and sorted(after)[-3] < 1024, after
    # Read again from where the one before ended (recomputed), a report
    # names its entry and exit: only the 20 KB added halfway travel.
    redone = []

    def recompute(part, entry):
        r = pp.read(part, entry)
        redone.append(len(pickle.dumps(r.report)))
        return r.report, r

    verified = pp.verify(parts, ((r, None) for r in reports), recompute)
    assert verified.recomputed == len(redone) > 5
    assert max(redone) < 24 << 10, redone
    assert sorted(redone)[-2] < 1024, redone
    # And the union is still exactly the sequential reading.
    fp, recomputed, numbers = read_all(path, 64 << 10)
    want = Fingerprint()
    for p in pcap_parallel.open(str(path)).packets():
        want.add_packet(p)
    assert (fp.packets, fp.data.hexdigest(), fp.records.hexdigest()) == (
        want.packets, want.data.hexdigest(), want.records.hexdigest())
    assert numbers == list(range(1, 3001)) and recomputed >= 1
    plan = pp.survey_local(parts)
    import pyarrow as pa

    table = pa.concat_tables(pp.read_table(p) for p in plan)
    assert table.equals(pcap_parallel.open(str(path)).to_arrow())
    assert table["interface_id"].to_pylist()[-1] is not None
