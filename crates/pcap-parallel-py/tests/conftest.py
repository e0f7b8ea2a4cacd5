"""Shared fixtures: the repository's sample, the capture corpus and its
manifest, the workspace's binaries, and fingerprints computed as the
corpus' reference reader (fingerprint.py) computes them.

Which captures the manifest-driven tests read (the ``corpus`` and
``manifest`` fixtures; pytest's header says which):

* ``$PCAP_CORPUS`` when set: the shared capture corpus there (CI sets it;
  its absence is then a failure);
* else the shared corpus at ``../shared/corpus`` beside the repository, or
  at ``$PCAP_CORPUS_DEFAULT`` when that is set (a path that does not exist,
  e.g. ``PCAP_CORPUS_DEFAULT=/nonexistent``, runs the tests as on a clone
  without the corpus); ``PCAP_CORPUS_REQUIRED=1`` makes its absence a
  failure;
* else the real captures shipped in ``samples/real`` (the same manifest
  columns, rows of the corpus' manifest): every manifest-driven test runs
  over those, and a test that needs a particular corpus file they lack
  (``capture_file``) is skipped with a reason naming it.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "samples" / "sample.pcap"
#: The real captures shipped with the repository, with their manifest.
SHIPPED = REPO / "samples" / "real"


def corpus_dir() -> Path | None:
    """The shared capture corpus, or None when it is absent and not
    required (see the module's documentation)."""
    explicit = os.environ.get("PCAP_CORPUS")
    default = os.environ.get("PCAP_CORPUS_DEFAULT") or str(REPO.parent / "shared" / "corpus")
    path = Path(explicit or default)
    if (path / "MANIFEST.tsv").is_file():
        return path
    if explicit:
        raise RuntimeError(f"PCAP_CORPUS={explicit} holds no MANIFEST.tsv")
    if os.environ.get("PCAP_CORPUS_REQUIRED") == "1":
        raise RuntimeError(f"PCAP_CORPUS_REQUIRED=1 and no capture corpus at {path}")
    return None


def pytest_report_header(config) -> str:
    path = corpus_dir()
    if path is not None:
        return f"capture corpus: {path}"
    return (
        "capture corpus: none (set PCAP_CORPUS); the manifest tests run over samples/real, "
        "tests that need a corpus file not shipped there are skipped"
    )


@pytest.fixture(scope="session")
def shared_corpus() -> bool:
    """True when the manifest-driven tests read the shared corpus, False
    when they read samples/real."""
    return corpus_dir() is not None


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The directory of the captures the manifest lists: the shared corpus,
    else samples/real."""
    return corpus_dir() or SHIPPED


@pytest.fixture(scope="session")
def manifest(corpus: Path, shared_corpus: bool) -> list[dict]:
    with open(corpus / "MANIFEST.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if shared_corpus:
        assert len(rows) >= 89, f"the manifest lists {len(rows)} files"
    else:
        assert len(rows) >= 29, f"samples/real's manifest lists {len(rows)} files"
    for r in rows:
        r["path"] = corpus / r["file"]
    return rows


def capture_file(name: str) -> Path:
    """A capture named as in the corpus: shipped in samples/real, or in the
    shared corpus; when neither has it, the calling test is skipped."""
    for d in (SHIPPED, corpus_dir()):
        if d is not None and (d / name).is_file():
            return d / name
    pytest.skip(f"needs the corpus file {name} (not in samples/real; no capture corpus: set PCAP_CORPUS)")


def binary(name: str) -> Path:
    """A binary of the workspace: $PCAP_PARALLEL_BIN_DIR, else target/."""
    dirs = [os.environ.get("PCAP_PARALLEL_BIN_DIR")]
    dirs += [str(REPO / "target" / p) for p in ("release", "debug")]
    for d in dirs:
        if d and (Path(d) / name).is_file():
            return Path(d) / name
    raise RuntimeError(f"{name} is not built: run `cargo build --workspace` (scripts/test does)")


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed (.ci/run installs it: apt-get install {name})")
    return path


def ts_text(ts: int | None) -> str:
    """A timestamp in nanoseconds as fingerprint.py prints it."""
    if ts is None:
        return ""
    return f"{ts // 1_000_000_000}.{ts % 1_000_000_000:09d}"


class Fingerprint:
    """data_sha256 and records_sha256 of a run of packets, as fingerprint.py."""

    def __init__(self) -> None:
        self.packets = 0
        self.data = hashlib.sha256()
        self.records = hashlib.sha256()

    def add(self, data: bytes | memoryview, orig_len: int, ts: int | None) -> None:
        self.packets += 1
        self.data.update(data)
        self.records.update(f"{len(data)}\t{orig_len}\t{ts_text(ts)}\n".encode())

    def add_packet(self, p) -> None:
        self.add(p.data, p.len, p.ts)


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, check=False, **kw)


def run_python(args: list, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """Runs this interpreter on ``args`` in ``cwd``, as from an activated
    virtual environment (its bin directory first on PATH) and on loopback
    for Spark; ``env`` adds variables. Output as text."""
    environ = dict(os.environ)
    environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), environ.get("PATH", "")])
    environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    for k, v in env.items():
        environ.setdefault(k, v)
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def record_offsets(path: Path) -> list[int]:
    """The byte offset of every record of a pcap file, read by dpkt."""
    import dpkt

    with open(path, "rb") as f:
        pos, offsets = 24, []
        for _, buf in dpkt.pcap.Reader(f):
            offsets.append(pos)
            pos += 16 + len(buf)
    return offsets
