"""Issue 22, items 6 and 7: ``Capture.split`` and ``Flows.write`` go
through the command line's one implementation of a set of parts (the
library's ``PartSet``): they never replace or delete their input, a
failed or interrupted split leaves the directory as it was (listing and
bytes), stale parts go only with a complete new set, two splits into one
prefix never mix (the CLI's lock, across processes and faces), and a
prefix cannot reach outside the directory. Where the command line has the
same scenario, both faces are run and give the same outcome."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dpkt
import pytest

import pcap_parallel
from conftest import SAMPLE, binary, run

SAMPLE_PACKETS = 1000


def snapshot(directory: Path) -> list[tuple[str, str]]:
    """Every entry under ``directory`` (hidden ones too) with its SHA-256
    (directories as "dir"), sorted."""
    out = []
    for root, dirs, files in os.walk(directory):
        for d in dirs:
            out.append((os.path.relpath(os.path.join(root, d), directory), "dir"))
        for f in files:
            p = os.path.join(root, f)
            out.append((os.path.relpath(p, directory), hashlib.sha256(Path(p).read_bytes()).hexdigest()))
    return sorted(out)


def dpkt_count(path: str | Path) -> int:
    """Packets in a pcap file, read by dpkt (not by us)."""
    with open(path, "rb") as f:
        return sum(1 for _ in dpkt.pcap.Reader(f))


def cli(*args) -> subprocess.CompletedProcess:
    return run([binary("pcap-parallel"), *args])


def big_capture(path: Path, copies: int) -> Path:
    """The sample's packets ``copies`` times over, as one pcap."""
    data = SAMPLE.read_bytes()
    path.write_bytes(data[:24] + data[24:] * copies)
    return path


def first_packets(path: Path, n: int) -> Path:
    """The sample's first ``n`` packets, written by dpkt."""
    with open(SAMPLE, "rb") as f, open(path, "wb") as out:
        reader = dpkt.pcap.Reader(f)
        writer = dpkt.pcap.Writer(out, snaplen=reader.snaplen, linktype=reader.datalink())
        for i, (ts, buf) in enumerate(reader):
            if i == n:
                break
            writer.writepkt(buf, ts)
    return path


# -- item 6: the input is never replaced or deleted --------------------------


@pytest.mark.parametrize(
    "name, chunks",
    [("cap-00000003.pcap", 2), ("cap-00000001.pcap", 4), ("cap-00000000.pcap", 4)],
)
@pytest.mark.parametrize("face", ["python", "cli"])
def test_split_never_destroys_its_input(tmp_path, name, chunks, face):
    d = tmp_path / "d"
    d.mkdir()
    source = d / name
    shutil.copy(SAMPLE, source)
    before = snapshot(d)
    assert source.read_bytes() == SAMPLE.read_bytes()
    if face == "python":
        with pytest.raises(ValueError, match="is named like a part") as e:
            pcap_parallel.open(str(source), chunks=chunks).split(d, prefix="cap", force=True)
        assert str(source) in str(e.value)
    else:
        out = cli("split", "-q", source, "-o", d, "--prefix", "cap", "--chunks", chunks, "--force")
        assert out.returncode == 2, out.stderr
        assert b"is named like a part" in out.stderr
    assert snapshot(d) == before, "nothing touched"
    assert source.read_bytes() == SAMPLE.read_bytes()
    assert dpkt_count(source) == SAMPLE_PACKETS


@pytest.mark.parametrize("face", ["python", "cli"])
def test_flow_shards_never_destroy_their_input(tmp_path, face):
    d = tmp_path / "d"
    d.mkdir()
    source = d / "cap-00000001.pcap"
    shutil.copy(SAMPLE, source)
    # A hard link elsewhere is the input too.
    os.link(source, d / "cap-00000002.pcap")
    before = snapshot(d)
    if face == "python":
        with pytest.raises(ValueError, match="is named like a part"):
            pcap_parallel.open(str(source)).flows(4).write(d, prefix="cap", force=True)
    else:
        out = cli("split", "-q", source, "-o", d, "--prefix", "cap", "--flows", "4", "--force")
        assert out.returncode == 2, out.stderr
    assert snapshot(d) == before
    assert dpkt_count(source) == SAMPLE_PACKETS


# -- item 7: all or nothing ----------------------------------------------------


def broken_capture(manifest) -> Path:
    """The largest pcap of the corpus that the manifest lists as broken
    (our parser stops with an error), with packets before the fault."""
    broken = [
        r
        for r in manifest
        if r["parser_status"].startswith("error") and r["format"] == "pcap" and r["compression"] == "none"
        and int(r["packets_parser"] or 0) > 100
    ]
    assert broken, "the manifest lists no broken pcap with packets"
    return Path(max(broken, key=lambda r: int(r["size_bytes"]))["path"])


def earlier_split(d: Path, prefix: str = "cap", chunks: int = 10) -> list[str]:
    parts = pcap_parallel.open(str(SAMPLE), chunks=chunks).split(d, prefix=prefix)
    assert len(parts) == chunks
    return parts


@pytest.mark.parametrize("how", ["chunks", "flows"])
def test_a_broken_input_leaves_the_directory_as_it_was(tmp_path, manifest, how):
    broken = broken_capture(manifest)
    d = tmp_path / "d"
    earlier_split(d)
    before = snapshot(d)
    cap = pcap_parallel.open(str(broken), chunks=16)
    with pytest.raises(pcap_parallel.errors.FormatError):
        if how == "chunks":
            cap.split(d, prefix="cap", force=True, compress="gzip")
        else:
            cap.flows(3).write(d, prefix="cap", force=True)
    assert snapshot(d) == before, "no new part, no stale part removed, no staging left"
    # And into a new directory: none is left behind.
    new = tmp_path / "new" / "deeper"
    with pytest.raises(pcap_parallel.errors.FormatError):
        pcap_parallel.open(str(broken), chunks=16).split(new)
    assert not (tmp_path / "new").exists()


@pytest.fixture
def small_disk(tmp_path):
    """A 200 KB tmpfs (smaller than the 378 KB sample), or a skip saying
    why it cannot be mounted."""
    path = tmp_path / "disk"
    path.mkdir()
    out = run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", path])
    if out.returncode != 0:
        pytest.skip(f"a tmpfs cannot be mounted here (needs root): {out.stderr.decode().strip()}")
    yield path
    run(["umount", path])


@pytest.mark.parametrize("how", ["chunks", "flows"])
def test_a_full_disk_leaves_the_directory_as_it_was(small_disk, how):
    d = small_disk / "d"
    # An earlier split of a small capture: 10 parts.
    small = first_packets(small_disk / "small.pcap", 150)
    parts = pcap_parallel.open(str(small), chunks=10).split(d, prefix="cap")
    assert len(parts) == 10
    before = snapshot(small_disk)
    py = pcap_parallel.open(str(SAMPLE), chunks=4)
    with pytest.raises(OSError, match="No space left on device"):
        if how == "chunks":
            py.split(d, prefix="cap", force=True)
        else:
            py.flows(3).write(d, prefix="cap", force=True)
    assert snapshot(small_disk) == before
    # The command line, the same.
    extra = ["--chunks", "4"] if how == "chunks" else ["--flows", "3"]
    out = cli("split", "-q", SAMPLE, "-o", d, "--prefix", "cap", "--force", *extra)
    assert out.returncode == 1 and b"no part written" in out.stderr, out.stderr
    assert snapshot(small_disk) == before
    # Onto the full disk into a new directory: none is left.
    with pytest.raises(OSError):
        pcap_parallel.open(str(SAMPLE), chunks=4).split(small_disk / "new")
    assert snapshot(small_disk) == before


def test_a_read_only_directory_is_an_os_error_and_untouched(small_disk):
    d = small_disk / "d"
    small = first_packets(small_disk / "small.pcap", 150)
    assert len(pcap_parallel.open(str(small), chunks=3).split(d, prefix="cap")) == 3
    before = snapshot(small_disk)
    assert run(["mount", "-o", "remount,ro", small_disk]).returncode == 0
    with pytest.raises(OSError) as e:
        pcap_parallel.open(str(SAMPLE), chunks=2).split(d, prefix="cap", force=True)
    assert "Read-only file system" in str(e.value)
    out = cli("split", "-q", SAMPLE, "-o", d, "--prefix", "cap", "--force", "--chunks", "2")
    assert out.returncode == 1 and b"Read-only file system" in out.stderr, out.stderr
    assert snapshot(small_disk) == before


def test_fewer_shards_replace_more_exactly(tmp_path):
    d = tmp_path / "shards"
    cap = pcap_parallel.open(str(SAMPLE))
    eight = cap.flows(8).write(d)
    assert len(eight) == 8 and sum(dpkt_count(p) for p in eight) == SAMPLE_PACKETS
    four = pcap_parallel.open(str(SAMPLE)).flows(4).write(d, force=True)
    assert sorted(os.listdir(d)) == [f"sample-{i:08}.pcap" for i in range(4)]
    assert [os.fspath(p) for p in four] == [str(d / f"sample-{i:08}.pcap") for i in range(4)]
    assert sum(dpkt_count(p) for p in four) == SAMPLE_PACKETS
    # Chunks too: 10 then 3 leave exactly 3, every packet once.
    c = tmp_path / "chunks"
    earlier_split(c, prefix="sample")
    three = pcap_parallel.open(str(SAMPLE), chunks=3).split(c, force=True)
    assert sorted(os.listdir(c)) == [f"sample-{i:08}.pcap" for i in range(3)]
    assert sum(dpkt_count(p) for p in three) == SAMPLE_PACKETS


SPLIT_SCRIPT = textwrap.dedent(
    """
    import sys
    import pcap_parallel
    source, out, prefix = sys.argv[1:4]
    try:
        paths = pcap_parallel.open(source, packets=int(sys.argv[4]), workers=1).split(
            out, prefix=prefix, force=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
    print(len(paths), flush=True)
    """
)


def start_split(source: Path, out: Path, prefix: str, packets: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SPLIT_SCRIPT, str(source), str(out), prefix, str(packets)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(cond, what: str, timeout: float = 60) -> None:
    start = time.monotonic()
    while not cond():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        time.sleep(0.005)


def staged_parts(d: Path) -> int:
    return sum(len(files) for root, _, files in os.walk(d) if os.path.basename(root).startswith(".pcap-parallel-"))


def test_an_interrupted_split_leaves_the_directory_as_it_was(tmp_path):
    big = big_capture(tmp_path / "big.pcap", 120)
    d = tmp_path / "d"
    earlier_split(d, prefix="p", chunks=10)
    before = snapshot(d)
    child = start_split(big, d, "p", 100)
    wait_for(lambda: staged_parts(d) >= 5, "parts in the staging directory")
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130 and out.strip() == "interrupted", (out, err)
    assert snapshot(d) == before, "no new part, no staging directory, no lock"


def test_a_killed_split_leaves_the_earlier_set_and_the_next_split_cleans_up(tmp_path):
    big = big_capture(tmp_path / "big.pcap", 120)
    d = tmp_path / "d"
    earlier_split(d, prefix="p", chunks=10)
    before = snapshot(d)
    child = start_split(big, d, "p", 100)
    wait_for(lambda: staged_parts(d) >= 5, "parts in the staging directory")
    child.kill()
    child.wait(timeout=60)
    # SIGKILL: nothing could run, yet every visible part is the earlier one.
    assert [e for e in snapshot(d) if not e[0].startswith(".")] == before
    assert staged_parts(d) >= 5, "the dead process' staging directory is still there"
    # The next split removes what the dead one left, and replaces the set.
    parts = pcap_parallel.open(str(SAMPLE), chunks=3).split(d, prefix="p", force=True)
    assert sorted(os.listdir(d)) == [f"p-{i:08}.pcap" for i in range(3)]
    assert sum(dpkt_count(p) for p in parts) == SAMPLE_PACKETS


def test_two_splits_into_one_prefix_never_mix(tmp_path):
    big = big_capture(tmp_path / "big.pcap", 120)
    total = SAMPLE_PACKETS * 120
    d = tmp_path / "d"
    first = start_split(big, d, "p", 1000)
    lock = d / ".p.pcap-parallel.lock"
    wait_for(lock.exists, "the first split's lock")
    # A second split in this process, and one by the command line: refused.
    with pytest.raises(BlockingIOError, match="another split is writing parts named p-"):
        pcap_parallel.open(str(SAMPLE), packets=10).split(d, prefix="p", force=True)
    with pytest.raises(BlockingIOError, match=str(d)):
        pcap_parallel.open(str(SAMPLE)).flows(5).write(d, prefix="p", force=True)
    out = cli("split", "-q", SAMPLE, "-o", d, "--prefix", "p", "--packets", "10", "--force")
    assert out.returncode == 1 and b"another split" in out.stderr, out.stderr
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert int(stdout) == total // 1000
    # Only the first split's parts, every packet of it, nothing else.
    names = sorted(os.listdir(d))
    assert names == [f"p-{i:08}.pcap" for i in range(total // 1000)]
    assert sum(dpkt_count(d / n) for n in names) == total
    # And the other way round: the command line holds the lock, Python waits for nothing.
    cli_child = subprocess.Popen(
        [binary("pcap-parallel"), "split", "-q", big, "-o", d, "--prefix", "p", "--packets", "500", "-j", "1", "--force"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_for(lock.exists, "the command line's lock")
    with pytest.raises(BlockingIOError):
        pcap_parallel.open(str(SAMPLE), packets=10).split(d, prefix="p", force=True)
    assert cli_child.wait(timeout=300) == 0, cli_child.stderr.read()
    names = sorted(os.listdir(d))
    assert names == [f"p-{i:08}.pcap" for i in range(total // 500)]
    assert sum(dpkt_count(d / n) for n in names) == total


@pytest.mark.parametrize("prefix", ["../escaped", "/tmp/absolute-prefix", "..", "a/b", ""])
def test_prefixes_outside_the_directory_are_refused(tmp_path, prefix):
    d = tmp_path / "d"
    cap = pcap_parallel.open(str(SAMPLE), chunks=2)
    with pytest.raises(ValueError, match="prefix must be a file name"):
        cap.split(d, prefix=prefix)
    with pytest.raises(ValueError, match="prefix must be a file name"):
        cap.flows(2).write(d, prefix=prefix)
    out = cli("split", "-q", SAMPLE, "-o", d, "--prefix", prefix)
    assert out.returncode == 2 and b"--prefix must be a file name" in out.stderr, out.stderr
    assert sorted(os.listdir(tmp_path)) == [], "nothing made, here or beside"
    assert not Path("/tmp/absolute-prefix-00000000.pcap").exists()


def test_existing_parts_need_force_in_both_faces(tmp_path):
    d = tmp_path / "d"
    earlier_split(d, prefix="sample", chunks=3)
    before = snapshot(d)
    with pytest.raises(FileExistsError, match=r"force=True replaces them"):
        pcap_parallel.open(str(SAMPLE), chunks=5).split(d)
    with pytest.raises(FileExistsError):
        pcap_parallel.open(str(SAMPLE)).flows(2).write(d)
    out = cli("split", "-q", SAMPLE, "-o", d, "--chunks", "5")
    assert out.returncode == 1 and b"use --force to replace them" in out.stderr, out.stderr
    assert snapshot(d) == before
    # With force, both faces write the same bytes.
    ours = pcap_parallel.open(str(SAMPLE), chunks=5).split(d, force=True)
    mine = {Path(p).name: Path(p).read_bytes() for p in ours}
    out = cli("split", "-q", SAMPLE, "-o", tmp_path / "c", "--chunks", "5")
    assert out.returncode == 0, out.stderr
    assert mine == {p.name: p.read_bytes() for p in (tmp_path / "c").iterdir()}
    assert sorted(os.listdir(d)) == sorted(mine)
