"""Every ```python block of README.md, docs/*.md (and of the Python
package's own README, crates/pcap-parallel-py/README.md) runs as written:
each in a fresh interpreter (this one, its bin directory first on PATH as
in an activated virtual environment), in a directory holding the files the
README's snippets name, made from samples/sample.pcap. A block must exit 0.

The files: ``trace.pcap`` and ``test.pcap`` (the sample), ``trace.pcap.zst``
(compressed with zstandard), ``trace.pcapng.zst`` (the sample's packets
rewritten as pcapng by dpkt, then compressed) and ``trace.parquet`` (the
package's own ``write_parquet``), except a file the block itself writes.
A block that names another capture or table file fails here: give it a
fixture below."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import dpkt
import pytest
import zstandard

import pcap_parallel
from conftest import REPO, SAMPLE, run_python

README = REPO / "README.md"
PACKAGE_README = REPO / "crates" / "pcap-parallel-py" / "README.md"
#: File names the snippets may use; made by ``make_file``.
KNOWN = ("trace.pcap", "test.pcap", "trace.pcap.zst", "trace.pcapng.zst", "trace.parquet")
NAME = re.compile(r"""["']([\w.-]+\.(?:pcap|pcapng|ntar|parquet|arrow|arrows|feather|zst|gz|bz2|xz|lz4))["']""")


def blocks(readme: Path) -> list[tuple[str, str]]:
    """("FILE:LINE", code) of every ```python block of ``readme``."""
    text = readme.read_text()
    where = readme.relative_to(REPO)
    out = []
    for m in re.finditer(r"^```python\n(.*?)^```", text, re.M | re.S):
        out.append((f"{where}:{text.count(chr(10), 0, m.start()) + 1}", m.group(1)))
    return out


#: The repository's documents: README.md and docs/ (where the README points).
DOCS = [README, *sorted((REPO / "docs").glob("*.md"))]
BLOCKS = [b for doc in DOCS for b in blocks(doc)]
ALL_BLOCKS = BLOCKS + blocks(PACKAGE_README)


def make_file(name: str, directory: Path) -> None:
    target = directory / name
    if name in ("trace.pcap", "test.pcap"):
        shutil.copyfile(SAMPLE, target)
    elif name == "trace.pcap.zst":
        target.write_bytes(zstandard.ZstdCompressor().compress(SAMPLE.read_bytes()))
    elif name == "trace.pcapng.zst":
        plain = directory / "pcapng.tmp"
        with open(SAMPLE, "rb") as f, open(plain, "wb") as out:
            reader = dpkt.pcap.Reader(f)
            writer = dpkt.pcapng.Writer(out, snaplen=reader.snaplen, linktype=reader.datalink())
            for ts, buf in reader:
                writer.writepkt(buf, ts=ts)
        target.write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
        plain.unlink()
    elif name == "trace.parquet":
        assert pcap_parallel.open(str(SAMPLE)).write_parquet(target) == 1000
    else:  # pragma: no cover - a README change this test must learn about
        raise AssertionError(f"a README snippet uses {name!r}: give it a fixture in test_readme.py")


def written_by(code: str) -> set[str]:
    """Files the block writes itself (which must not be there before)."""
    return set(re.findall(r"""write_parquet\(\s*["']([^"']+)["']""", code))


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 5 and len(ALL_BLOCKS) > len(BLOCKS)
    assert {name for _, code in ALL_BLOCKS for name in NAME.findall(code)} <= set(KNOWN)


@pytest.mark.parametrize("where,code", ALL_BLOCKS, ids=[where for where, _ in ALL_BLOCKS])
def test_readme_block_runs(where, code, tmp_path):
    for name in sorted(set(NAME.findall(code)) - written_by(code)):
        make_file(name, tmp_path)
    script = tmp_path / "snippet.py"
    script.write_text(code)
    # Spark (a snippet builds its own session): without its web UI.
    ui_off = "--conf spark.ui.enabled=false pyspark-shell"
    out = run_python([script], tmp_path, PYSPARK_SUBMIT_ARGS=ui_off)
    assert out.returncode == 0, f"{where}:\n{code}\n--- stdout\n{out.stdout}\n--- stderr\n{out.stderr}"
    for name in written_by(code):
        assert (tmp_path / name).is_file(), name


def block_with(text: str) -> str:
    (code,) = [code for _, code in BLOCKS if text in code]
    return code


def test_the_readme_sums_do_not_wrap_past_4_gib(tmp_path):
    """The packet-tables block on a table of two packets of 4e9 and 1e9
    bytes (len is uint32): DuckDB's and polars' sums print 5e9, not the
    uint32 wrap-around 705032704."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    code = block_with('pl.read_parquet("trace.parquet")')
    table = pcap_parallel.open(str(SAMPLE)).to_arrow().slice(0, 2)
    same = {name: pa.array([table.column(name)[0].as_py()] * 2, table.schema.field(name).type)
            for name in ("src_ip", "dst_ip", "dst_port")}
    table = table.set_column(table.schema.get_field_index("len"), "len",
                             pa.array([4_000_000_000, 1_000_000_000], pa.uint32()))
    for name, column in same.items():
        table = table.set_column(table.schema.get_field_index(name), name, column)
    pq.write_table(table, tmp_path / "trace.parquet")
    (tmp_path / "snippet.py").write_text(code)
    out = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert "705032704" not in out.stdout
    # DuckDB's table, then polars': each shows the sum once.
    assert out.stdout.count("5000000000") == 2, out.stdout


def original_example_counts() -> dict[str, int]:
    """The original README's example, in this process: per source, the
    frames dpkt decodes as Ethernet carrying IPv4."""
    import collections
    import ipaddress

    counts: collections.Counter[str] = collections.Counter()
    with open(SAMPLE, "rb") as f:
        for _, packet in dpkt.pcap.Reader(f):
            eth = dpkt.ethernet.Ethernet(packet)
            if isinstance(eth.data, dpkt.ip.IP):
                counts[str(ipaddress.ip_address(eth.data.src))] += 1
    return dict(counts)


def test_what_the_readme_says_top_counts_beyond_the_original_example():
    import ipaddress

    theirs = original_example_counts()
    ours = {r["key"]: r["packets"] for r in pcap_parallel.open(str(SAMPLE)).top(by="src", limit=0)["rows"]}
    ipv6 = {}
    with open(SAMPLE, "rb") as f:
        for _, packet in dpkt.pcap.Reader(f):
            ip = dpkt.ethernet.Ethernet(packet).data
            if isinstance(ip, dpkt.ip6.IP6):
                src = str(ipaddress.ip_address(ip.src))
                ipv6[src] = ipv6.get(src, 0) + 1
    # The figures the README gives.
    assert (len(theirs), sum(theirs.values())) == (630, 858)
    assert (len(ours), sum(ours.values())) == (759, 1000)
    assert (len(ipv6), sum(ipv6.values())) == (129, 142)
    # The same 630 with the same counts, and the IPv6 sources.
    assert {k: ours[k] for k in theirs} == theirs
    assert {k: v for k, v in ours.items() if k not in theirs} == ipv6
    text = (REPO / "docs" / "python.md").read_text()
    assert "630 sources in 858 packets, `top` 759 in all 1000" in text
    assert "the 129 sources of the 142 IPv6 packets" in text
