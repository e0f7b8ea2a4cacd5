"""traffic-taffy (PyPI ``traffic-taffy``, by pcap-parallel's author, written
for pcap-parallel 0.1) against the drop-in: its ``taffy-dissect`` on a
capture with a cut-short tail gives the same output as on the capture
without the tail, and its own test suite passes.

traffic-taffy names pcap-parallel 0.1, PyQt6 and a pinned pyOpenSSL among
its dependencies, so it is installed here without them (``pip install
--no-deps --target``, once, under target/) beside this package, and the
modules it imports come from the ``[test]`` extra."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dpkt
import pytest

from conftest import REPO, SAMPLE, capture_file, record_offsets

TAFFY = "traffic-taffy==1.6"
TAFFY_DIR = REPO / "target" / "traffic-taffy-1.6"


def pip_target(spec: str, directory: Path) -> None:
    """``pip install --no-deps --target directory spec``, once."""
    if (directory / ".installed").is_file():
        return
    staging = directory.with_name(directory.name + f".{os.getpid()}")
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--no-deps", "--target", str(staging), spec],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, f"pip install {spec} failed: {out.stderr}"
    (staging / ".installed").write_text(spec + "\n")
    try:
        staging.rename(directory)
    except OSError:  # another run installed it meanwhile
        shutil.rmtree(staging, ignore_errors=True)


@pytest.fixture(scope="module")
def taffy() -> dict[str, str]:
    """The environment that runs traffic-taffy with this pcap_parallel."""
    pip_target(TAFFY, TAFFY_DIR)
    # Only traffic-taffy there: never pcap-parallel 0.1.
    assert not (TAFFY_DIR / "pcap_parallel").exists()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TAFFY_DIR), env.get("PYTHONPATH")) if p)
    check = subprocess.run(
        [sys.executable, "-c", "import pcap_parallel, traffic_taffy.tools.dissect; "
         "print(pcap_parallel.__version__)"],
        capture_output=True, text=True, env=env,
    )
    assert check.returncode == 0, f"traffic-taffy's imports (the [test] extra): {check.stderr}"
    assert check.stdout.strip() != "0.1"
    return env


def dissect(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TAFFY_DIR / "bin" / "taffy-dissect"), *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=600,
    )


def check_same_output(env: dict[str, str], cwd: Path, whole: str, cut: str, packets: int,
                      ip_packets: int) -> None:
    a = dissect(env, cwd, whole)
    assert a.returncode == 0, a.stderr
    assert "CaptureWarning" not in a.stderr
    lines = a.stdout.splitlines()
    assert len(lines) > 20
    # The dissection counts every packet: its IP header-length key (one value
    # in these captures) counts them all.
    assert any(l.split()[:1] == ["Ethernet_IP_hl"] and l.split()[-1] == str(ip_packets) for l in lines)
    b = dissect(env, cwd, cut)
    assert b.returncode == 0, b.stderr
    assert "CaptureWarning" in b.stderr and f"packet {packets + 1}" in b.stderr
    assert b.stdout == a.stdout
    # 0.1's "all packets" (-n -1, maximum_count=-1) is the same.
    c = dissect(env, cwd, "-n", "-1", cut)
    assert c.returncode == 0, c.stderr
    assert c.stdout == a.stdout


def test_taffy_dissect_on_a_cut_short_capture_equals_the_capture_without_the_tail(taffy, tmp_path):
    data = SAMPLE.read_bytes()
    offset = record_offsets(SAMPLE)[733]  # packet 734
    (tmp_path / "whole.pcap").write_bytes(data[:offset])
    # tcpdump killed inside a record header, and inside a packet's bytes
    (tmp_path / "cut-header.pcap").write_bytes(data[: offset + 9])
    (tmp_path / "cut-data.pcap").write_bytes(data[: offset + 16 + 20])
    ip_packets = sum(1 for _, buf in dpkt.pcap.Reader(open(tmp_path / "whole.pcap", "rb"))
                     if isinstance(dpkt.ethernet.Ethernet(buf).data, dpkt.ip.IP))
    for cut in ("cut-header.pcap", "cut-data.pcap"):
        check_same_output(taffy, tmp_path, "whole.pcap", cut, 733, ip_packets)
    # And what it prints with pcap-parallel 0.1 itself, on the whole capture.
    original_dir = REPO / "target" / "pcap-parallel-0.1"
    pip_target("pcap-parallel==0.1", original_dir)
    with_original = dict(taffy, PYTHONPATH=os.pathsep.join([str(TAFFY_DIR), str(original_dir)]))
    theirs = dissect(with_original, tmp_path, "whole.pcap")
    assert theirs.returncode == 0, theirs.stderr
    assert theirs.stdout == dissect(taffy, tmp_path, "whole.pcap").stdout


def test_taffy_dissect_on_the_corpus_capture_cut_by_its_writer(taffy, tmp_path):
    path = capture_file("OISF__suricata-verify__tests--http-mime-truncated--input.pcap")
    data = path.read_bytes()
    (tmp_path / "whole.pcap").write_bytes(data[:-1])  # its last byte: 1 of 16 of a record header
    shutil.copy(path, tmp_path / "cut.pcap")
    check_same_output(taffy, tmp_path, "whole.pcap", "cut.pcap", 2696, 2696)


#: traffic-taffy 1.6's tests that fail with pcap-parallel 0.1 as well: the
#: first compares floats computed differently, the second reads a capture
#: it says "doesn't need to exist" (0.1's open_maybe_compressed raises
#: FileNotFoundError too).
FAIL_WITH_0_1 = ["test_compare_statistical_algorithm", "test_dissector_simple_callback"]


def test_traffic_taffys_own_test_suite(taffy, tmp_path):
    import bz2
    import gzip
    import lzma

    # Its splitter test reads these from the current directory (and skips
    # those it does not find: all are there).
    data = SAMPLE.read_bytes()
    (tmp_path / "test.pcap").write_bytes(data)
    (tmp_path / "testgz.pcap.gz").write_bytes(gzip.compress(data))
    (tmp_path / "testbz2.pcap.bz2").write_bytes(bz2.compress(data))
    (tmp_path / "testxz.pcap.xz").write_bytes(lzma.compress(data))
    tests = TAFFY_DIR / "traffic_taffy"
    deselect = ["-k", " and ".join(f"not {t}" for t in FAIL_WITH_0_1)]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(tests / "tests"),
         *deselect],
        capture_output=True, text=True, env=taffy, cwd=tmp_path, timeout=900,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    summary = out.stdout.strip().splitlines()[-1]
    assert "21 passed" in summary and "failed" not in summary and "skipped" not in summary, summary
