"""Shared fixtures: the repository's sample, the shared capture corpus and
its manifest, the workspace's binaries, and fingerprints computed as the
corpus' reference reader (fingerprint.py) computes them."""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "samples" / "sample.pcap"


def corpus_dir() -> Path | None:
    """$PCAP_CORPUS (its absence is then a failure), else ../shared/corpus
    beside the repository (its absence is then a skip)."""
    explicit = os.environ.get("PCAP_CORPUS")
    path = Path(explicit) if explicit else REPO.parent / "shared" / "corpus"
    if (path / "MANIFEST.tsv").is_file():
        return path
    if explicit:
        raise RuntimeError(f"PCAP_CORPUS={explicit} holds no MANIFEST.tsv")
    return None


@pytest.fixture(scope="session")
def corpus() -> Path:
    path = corpus_dir()
    if path is None:
        pytest.skip("no capture corpus at ../shared/corpus (set PCAP_CORPUS)")
    return path


@pytest.fixture(scope="session")
def manifest(corpus: Path) -> list[dict]:
    with open(corpus / "MANIFEST.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) >= 89, f"the manifest lists {len(rows)} files"
    for r in rows:
        r["path"] = corpus / r["file"]
    return rows


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
