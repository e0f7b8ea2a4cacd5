"""The type stubs of the native module parse and name everything it holds
(an out-of-date or broken stub misleads every type checker and editor)."""

from __future__ import annotations

import ast
from pathlib import Path

import pcap_parallel
from pcap_parallel import _native


def test_the_native_stubs_parse_and_cover_the_module():
    stub = Path(pcap_parallel.__file__).with_name("_native.pyi")
    tree = ast.parse(stub.read_text(), filename=str(stub))
    named = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            named.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            named.add(node.target.id)
        elif isinstance(node, ast.Assign):
            named.update(t.id for t in node.targets if isinstance(t, ast.Name))
    public = {n for n in dir(_native) if not n.startswith("_")}
    assert public - named == set()
