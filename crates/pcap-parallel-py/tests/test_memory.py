"""The parent's memory stays flat in the input's size: on a 1 GiB synthetic
capture (plain, and zstd-compressed), the drop-in's parent process peaks
below 100 MiB of heap, while every byte reaches the workers.

Memory is sampled from /proc/PID/status every 5 ms, as the benchmark suite
does: RssAnon (heap and stacks) is what the process holds; RssFile counts
the pages of the memory-mapped input while the parent cuts it, which are
the kernel's page cache (shared, reclaimable, not a copy) and are reported
beside it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import zstandard

from conftest import binary

MIB = 1 << 20

SCRIPT = textwrap.dedent(
    """
    import sys
    from pcap_parallel import PCAPParallel

    def size(f):
        return len(f.getbuffer())

    results = PCAPParallel(sys.argv[1], callback=size, maximum_cores=2).split()
    print(len(results), sum(f.result() for f in results))
    """
)


def status(pid: int) -> dict[str, int]:
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if value.strip().endswith("kB"):
                    fields[key] = int(value.split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return fields


def peak_memory(args: list[str], cwd: Path) -> tuple[str, int, int]:
    """Runs the script; returns its output and the peaks of RssAnon and RssFile."""
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    anon = file = 0
    while proc.poll() is None:
        s = status(proc.pid)
        anon = max(anon, s.get("RssAnon", 0))
        file = max(file, s.get("RssFile", 0))
        time.sleep(0.005)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    return out, anon, file


@pytest.fixture(scope="module")
def big_capture(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "synthetic-1g.pcap"
    subprocess.run([binary("pcap-synth"), "--seed", "7", "--bytes", "1G", path],
                   check=True, capture_output=True)
    return path


def expected_bytes(path: Path, compressed: Path | None = None) -> int:
    """The bytes of all chunks: the records once, plus a pcap header per chunk."""
    return path.stat().st_size


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "zstd"])
def test_the_parent_stays_below_100_mib_on_a_1_gib_capture(big_capture, tmp_path, compressed):
    path = big_capture
    if compressed:
        path = tmp_path / "synthetic-1g.pcap.zst"
        with open(big_capture, "rb") as src, open(path, "wb") as dst:
            zstandard.ZstdCompressor(level=1).copy_stream(src, dst)
    (tmp_path / "run.py").write_text(SCRIPT)
    out, anon, file = peak_memory([sys.executable, "run.py", str(path)], tmp_path)
    chunks, total = map(int, out.split())
    size = big_capture.stat().st_size
    # Every record reached a worker: the records, and a file header per chunk.
    assert total == size + 24 * (chunks - 1)
    print(f"\n{path.name}: {chunks} chunks, parent peak RssAnon {anon / MIB:.1f} MiB, "
          f"RssFile {file / MIB:.1f} MiB")
    assert anon < 100 * MIB, f"parent heap peaked at {anon / MIB:.1f} MiB"
