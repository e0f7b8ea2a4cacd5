"""What ``pip install pcap-parallel`` brings and what the extras are for:
dpkt unconditionally (pcap-parallel 0.1 required it, and its users'
callbacks import it), nothing else; ``progress=True`` without tqdm fails at
``open()``, naming the extra to install, not at the first run."""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import re
import subprocess
import sys

import pytest

import pcap_parallel
from pcap_parallel import PCAPParallel
from conftest import SAMPLE


def requirements() -> list[tuple[str, str, str]]:
    """The installed distribution's requirements as (name, version
    specifier, marker), names normalised as PEP 503 does, markers without
    spaces and with double quotes."""
    out = []
    for req in importlib.metadata.requires("pcap-parallel") or []:
        spec, _, marker = req.partition(";")
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)", spec)
        assert m, req
        name = re.sub(r"[-_.]+", "-", m.group(1)).lower()
        marker = re.sub(r"\s+", "", marker).replace("'", '"')
        out.append((name, m.group(3).strip().strip("()").replace(" ", ""), marker))
    return out


def test_dpkt_is_required_unconditionally_and_nothing_else():
    reqs = requirements()
    unconditional = [(name, spec) for name, spec, marker in reqs if "extra" not in marker]
    assert unconditional == [("dpkt", ">=1.9")], reqs
    # Everything heavier comes with an extra.
    extras = {re.search(r'extra=="([^"]+)"', m).group(1) for _, _, m in reqs if "extra" in m}
    assert {"progress", "arrow", "dask", "spark", "test"} <= extras, extras
    assert ("tqdm", "", 'extra=="progress"') in reqs


def run_without_tqdm(code: str) -> dict:
    """``code`` in a fresh interpreter where ``import tqdm`` fails; returns
    the JSON it prints."""
    prelude = "import sys\nsys.modules['tqdm'] = None\n"
    out = subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_progress_true_without_tqdm_fails_at_open():
    got = run_without_tqdm(
        f"""
import json, pcap_parallel
try:
    import tqdm
except ImportError:
    pass
else:
    raise SystemExit("tqdm is importable")
try:
    cap = pcap_parallel.open({str(SAMPLE)!r}, progress=True)
except ImportError as e:
    print(json.dumps(dict(at="open", type=type(e).__name__, name=e.name, message=str(e))))
else:
    print(json.dumps(dict(at="not at open")))
"""
    )
    assert got == {
        "at": "open",
        "type": "ModuleNotFoundError",
        "name": "tqdm",
        "message": "progress=True needs tqdm: pip install 'pcap-parallel[progress]'",
    }


def test_without_tqdm_the_other_progress_forms_still_work():
    got = run_without_tqdm(
        f"""
import json, pcap_parallel
calls = []
n = pcap_parallel.open({str(SAMPLE)!r}, progress=lambda *a: calls.append(a)).count()
m = pcap_parallel.open({str(SAMPLE)!r}, progress=False).count()
print(json.dumps(dict(n=n, m=m, last=calls[-1] if calls else None)))
"""
    )
    size = SAMPLE.stat().st_size
    # Bytes done reach the file's size once it is read to its end.
    assert got == {"n": 1000, "m": 1000, "last": [size, size, 1000]}


def test_progress_true_with_tqdm_opens_and_runs():
    pytest.importorskip("tqdm", reason="tqdm is in the [test] extra")
    assert pcap_parallel.open(str(SAMPLE), progress=True).count() == 1000


def test_the_drop_in_takes_no_progress_option():
    # 0.1's PCAPParallel had none, and ours adds none: nothing to check early.
    assert "progress" not in inspect.signature(PCAPParallel).parameters
    with pytest.raises(TypeError):
        PCAPParallel(str(SAMPLE), progress=True)  # type: ignore[call-arg]
