"""Worker processes are as safe as the CLI (issue 22, items 8, 11, 13): a
file truncated under a chunk in use, a stale locator, chunks kept after a
run give the file-changed error (never a SIGBUS that kills a worker or the
process, never zeros); the worker count has a ceiling; workers die with the
process that started them, however it ends."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

import pcap_parallel
from pcap_parallel import _native, _workers
from conftest import SAMPLE


@pytest.fixture
def copy(tmp_path):
    path = tmp_path / "cap.pcap"
    shutil.copyfile(SAMPLE, path)
    return path


# --- The worker count (item 11) ---------------------------------------------


def test_the_worker_count_has_a_ceiling():
    ceiling = _native.max_workers
    assert ceiling == min(max(32, 4 * (os.cpu_count() or 1)), 1024) or ceiling >= 32
    for bad in (ceiling + 1, 300 if ceiling < 300 else ceiling + 300, 10**6):
        with pytest.raises(ValueError, match=rf"workers={bad} is more than {ceiling}"):
            pcap_parallel.open(str(SAMPLE), workers=bad)
    with pytest.raises(ValueError, match="at least 1"):
        pcap_parallel.open(str(SAMPLE), workers=0)
    assert pcap_parallel.open(str(SAMPLE), workers=ceiling).workers == ceiling


# --- Files that shrink under chunks in use (item 8) -------------------------


def truncate_then_use(path: str, size: int, use: str, chunk):
    """On a worker: the chunk is open (mapped); the file is cut to ``size``
    bytes (as tcpdump's rotation or a careless cleanup does), then the chunk
    is used."""
    if chunk.index < 2:
        return chunk.packet_count
    os.truncate(path, size)
    if use == "bytes":
        return len(chunk.bytes())
    if use == "file":
        return len(chunk.file().getvalue())
    return sum(len(p.data) for p in chunk.packets())


@pytest.mark.parametrize("use", ["packets", "bytes", "file"])
def test_a_capture_truncated_during_map_is_the_file_changed_error(copy, use):
    cap = pcap_parallel.open(str(copy), chunks=4, workers=2)
    fn = functools.partial(truncate_then_use, str(copy), 30_000, use)
    with pytest.raises(pcap_parallel.CaptureError, match="changed") as e:
        cap.map(fn)
    assert not isinstance(e.value, BrokenProcessPool)


def test_the_drop_in_worker_side_reports_a_truncated_file(copy):
    # What PCAPParallel's split runs on its workers: fn(io.BytesIO(chunk)).
    locators = list(pcap_parallel.open(str(copy), chunks=4).locators())
    with _workers.WorkerPool(2) as pool:
        first = pool.submit(_workers.call_with_bytesio, _len_of_file, locators[0]).result()
        assert first > 24
        os.truncate(copy, 30_000)
        for loc in locators[1:]:
            with pytest.raises(pcap_parallel.CaptureError, match="changed"):
                pool.submit(_workers.call_with_bytesio, _len_of_file, loc).result()


def _len_of_file(f) -> int:
    return len(f.getvalue())


STALE = textwrap.dedent(
    """
    import os, sys
    import pcap_parallel
    path, cut = sys.argv[1], int(sys.argv[2])
    locators = list(pcap_parallel.open(path, chunks=4).locators())
    os.truncate(path, cut)
    for loc in locators:
        try:
            print(loc.index, "packets", len(list(loc.open().packets())))
        except pcap_parallel.CaptureError as e:
            print(loc.index, "error", e)
    """
)


@pytest.mark.parametrize("cut", [100_000, 377_000])
def test_a_stale_locator_is_an_error_not_a_sigbus(copy, cut):
    # 377,000: only the last chunk's range now reaches past the end.
    r = subprocess.run([sys.executable, "-c", STALE, str(copy), str(cut)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    lines = r.stdout.splitlines()
    assert len(lines) == 4, r.stdout
    assert lines[0].startswith("0 packets")
    assert "changed" in lines[3] and "error" in lines[3], lines[3]
    if cut == 100_000:
        assert all(" error " in line and "changed" in line for line in lines[1:]), lines


def test_chunks_kept_after_a_run_raise_instead_of_reading_zeros(copy):
    # The chunks share the run's map of the whole file: once it shrank, none
    # is trusted (the one whose bytes all remain included).
    chunks = list(pcap_parallel.open(str(copy), chunks=4).chunks())
    assert all(c.bytes() for c in chunks)
    assert sum(len(list(c.packets())) for c in chunks) == pcap_parallel.open(str(copy)).count()
    os.truncate(copy, 200_000)
    for c in chunks:
        with pytest.raises(pcap_parallel.CaptureError, match="changed"):
            c.bytes()
        with pytest.raises(pcap_parallel.CaptureError, match="changed"):
            c.file()
        with pytest.raises(pcap_parallel.CaptureError, match="changed"):
            list(c.packets())
        with pytest.raises(pcap_parallel.CaptureError, match="changed"):
            c.check_unchanged()


# --- Workers die with their parent (item 13) ---------------------------------


HANG = textwrap.dedent(
    """
    import os, sys, threading, time
    import pcap_parallel

    def hang(chunk):
        open(os.path.join(sys.argv[2], str(os.getpid())), "w").close()
        time.sleep(3600)

    def run():
        pcap_parallel.open(sys.argv[1], chunks=8, workers=2).map(hang)

    if sys.argv[3] == "thread":
        t = threading.Thread(target=run)
        t.start()
        t.join()
    else:
        run()
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(
    "sig,where", [(signal.SIGTERM, "main"), (signal.SIGKILL, "main"), (signal.SIGTERM, "thread")]
)
def test_workers_die_with_their_parent(tmp_path, sig, where):
    pids_dir = tmp_path / "pids"
    pids_dir.mkdir()
    parent = subprocess.Popen([sys.executable, "-c", HANG, str(SAMPLE), str(pids_dir), where])
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:
            workers = [int(p.name) for p in pids_dir.iterdir()]
            time.sleep(0.1)
        assert len(workers) == 2, workers
        assert all(_alive(p) for p in workers)
        parent.send_signal(sig)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 10  # the watcher polls every 0.5 s
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in workers if _alive(p)], "workers outlived their parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for p in workers:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
