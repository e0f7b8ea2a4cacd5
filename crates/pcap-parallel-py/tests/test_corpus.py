"""Every capture of the shared corpus through the drop-in and the modern
API: packets, data_sha256 and records_sha256 equal the manifest's (what
the corpus' reference reader saw), every chunk is a capture that dpkt and
scapy read, and a broken file raises with its file, offset and packet after
every packet before the fault."""

from __future__ import annotations

import gzip
import io
import logging
import re

import dpkt
import pytest
import zstandard

import pcap_parallel
from pcap_parallel import PCAPParallel
from pcap_parallel.errors import CaptureError

from conftest import Fingerprint

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.utils import rdpcap  # noqa: E402


def is_ok(row: dict) -> bool:
    return row["parser_status"] == "ok"


def expected_fault(row: dict) -> tuple[int | None, int]:
    """(byte offset, packet number) of the fault the manifest records."""
    m = re.search(r"offset (\d+)", row["parser_status"])
    return (int(m.group(1)) if m else None, int(row["packets_parser"]) + 1)


def decompressed(row: dict) -> bytes:
    data = row["path"].read_bytes()
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def dpkt_packets(f) -> list[bytes]:
    """The packets dpkt reads from a capture (pcap or pcapng)."""
    head = f.read(4)
    f.seek(0)
    reader = dpkt.pcapng.Reader(f) if head == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
    return [bytes(buf) for _, buf in reader]


def dpkt_reference(row: dict) -> list[bytes] | None:
    """What dpkt reads from the whole file, if it reads it as the reference
    reader does (dpkt knows neither every pcapng block nor every pcap
    variant; files it cannot read are left out of the dpkt comparison)."""
    try:
        packets = dpkt_packets(io.BytesIO(decompressed(row)))
    except Exception:
        return None
    return packets if len(packets) == int(row["packets_parser"]) else None


# Worker callbacks (module level: they are pickled by reference).
def chunk_records(f: io.BytesIO) -> list[tuple[bytes, int, int | None]]:
    """The drop-in's callback: our own reader over the BytesIO chunk."""
    return [(p.tobytes(), p.len, p.ts) for p in pcap_parallel.open(f, workers=1).packets()]


def chunk_dpkt(f: io.BytesIO) -> list[bytes]:
    """The drop-in's callback: dpkt's packets."""
    return dpkt_packets(f)


def chunk_scapy(f: io.BytesIO) -> list[bytes]:
    """The drop-in's callback: scapy's packets (as read, before dissection)."""
    return [bytes(p.original) for p in rdpcap(f)]


def scapy_reference(row: dict) -> list[bytes] | None:
    """What scapy reads from the whole file, if it reads it as the reference
    reader does."""
    try:
        packets = chunk_scapy(io.BytesIO(decompressed(row)))
    except Exception:
        return None
    return packets if len(packets) == int(row["packets_parser"]) else None


def chunk_packets(chunk: pcap_parallel.Chunk) -> list[tuple[bytes, int, int | None]]:
    """``map``'s function: the chunk's packets, in the worker."""
    return [(p.tobytes(), p.len, p.ts) for p in chunk.packets()]


def check_fingerprint(row: dict, fp: Fingerprint, what: str) -> None:
    name = row["file"]
    assert fp.packets == int(row["packets_parser"]), f"{name} {what}: packets"
    assert fp.data.hexdigest() == row["data_sha256"], f"{name} {what}: data_sha256"
    assert fp.records.hexdigest() == row["records_sha256"], f"{name} {what}: records_sha256"


def check_error(row: dict, e: CaptureError) -> None:
    offset, packet = expected_fault(row)
    assert e.file == str(row["path"])
    assert e.packet == packet, f"{row['file']}: {e}"
    if offset is not None:
        assert e.offset == offset, f"{row['file']}: {e}"


def test_every_corpus_file_in_process(manifest):
    """``open(...).chunks()`` and the packet iterator, 97 packets a chunk."""
    for row in manifest:
        fp = Fingerprint()
        error = None
        try:
            for chunk in pcap_parallel.open(row["path"], packets=97).chunks():
                for p in chunk.packets():
                    fp.add_packet(p)
        except CaptureError as e:
            error = e
        check_fingerprint(row, fp, "chunks()")
        if is_ok(row):
            assert error is None, f"{row['file']}: {error}"
        else:
            assert error is not None, f"{row['file']}: no error"
            check_error(row, error)


def test_every_corpus_file_through_map_in_workers(manifest):
    """``map`` in worker processes, which open their chunks by locator."""
    for row in manifest:
        cap = pcap_parallel.open(row["path"], bytes=64 << 10, workers=2)
        fp = Fingerprint()
        error = None
        try:
            for records in cap.imap(chunk_packets):
                for data, orig_len, ts in records:
                    fp.add(data, orig_len, ts)
        except CaptureError as e:
            error = e
        check_fingerprint(row, fp, "map")
        assert (error is None) == is_ok(row), f"{row['file']}: {error}"
        if error is not None:
            check_error(row, error)


def test_every_corpus_file_through_the_drop_in(manifest):
    """``PCAPParallel`` with a callback reading each BytesIO chunk (strict:
    damage raises, as the other faces do; test_dropin_compat.py has the
    default, a warning)."""
    for row in manifest:
        fp = Fingerprint()
        ps = PCAPParallel(str(row["path"]), callback=chunk_records, split_size=97, maximum_cores=2,
                          strict=True)
        try:
            futures = ps.split()
            assert is_ok(row), f"{row['file']}: no error"
        except CaptureError as e:
            assert not is_ok(row), f"{row['file']}: {e}"
            check_error(row, e)
            futures = e.futures
        for f in futures:
            for data, orig_len, ts in f.result():
                fp.add(data, orig_len, ts)
        check_fingerprint(row, fp, "PCAPParallel")


@pytest.mark.parametrize("reader", ["dpkt", "scapy"])
def test_dpkt_and_scapy_read_every_chunk(manifest, shared_corpus, reader):
    """Every chunk of every well-formed file that the reader can read whole
    is a capture it reads: together, the same packets as the whole file."""
    reference_of, callback = {
        "dpkt": (dpkt_reference, chunk_dpkt),
        "scapy": (scapy_reference, chunk_scapy),
    }[reader]
    checked = 0
    for row in manifest:
        if not is_ok(row):
            continue
        reference = reference_of(row)
        if reference is None:
            continue
        ps = PCAPParallel(str(row["path"]), callback=callback, split_size=997, maximum_cores=2)
        results = [f.result() for f in ps.split()]
        assert [p for packets in results for p in packets] == reference, row["file"]
        checked += 1
    assert checked >= (60 if shared_corpus else 21), f"only {checked} files were readable by {reader}"
