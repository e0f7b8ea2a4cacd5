#!/usr/bin/env python3
"""Reads capture files in order with the corpus' reference reader
(fingerprint.py) and prints one JSON object: the packets of all of them and
the SHA-256 of all their packet data, as if they were one file.

usage: fingerprint_parts.py CORPUS_DIR FILE [FILE ...]
"""
import hashlib
import importlib.util
import json
import sys

spec = importlib.util.spec_from_file_location("fingerprint", sys.argv[1] + "/fingerprint.py")
fp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fp)

shared = hashlib.sha256()
init = fp.Result.__init__


def shared_init(self):
    init(self)
    self.h = shared


fp.Result.__init__ = shared_init
packets = 0
statuses = []
for path in sys.argv[2:]:
    r = fp.fingerprint(path)
    packets += r.packets
    statuses.append(r.status)
print(json.dumps({"packets": packets, "data_sha256": shared.hexdigest(), "statuses": statuses}))
