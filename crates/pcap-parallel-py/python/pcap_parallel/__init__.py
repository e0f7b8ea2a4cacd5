"""pcap-parallel: split packet captures exactly at packet boundaries and
process the pieces on every core.

Two APIs, one Rust core:

* :class:`PCAPParallel` — pcap-parallel 0.1's class, unchanged: a callback
  receives each chunk as an ``io.BytesIO`` in a worker process.
* :func:`open` — the modern API: ``info()``, ``top()``, ``count()``,
  ``split()`` and flow shards computed in Rust on every core; ``map`` /
  ``imap`` of your function over :class:`Chunk` objects in worker
  processes; a fast packet iterator with zero-copy packet data.
* :func:`partitions` — one capture as byte-range partitions for clusters
  (:mod:`pcap_parallel.partition`; Dask: :mod:`pcap_parallel.dask`, whose
  ``read_pcap`` gives packet tables as a dask dataframe; Spark: the ``pcap``
  data source of :mod:`pcap_parallel.spark`).

>>> import pcap_parallel                                   # doctest: +SKIP
>>> pcap_parallel.open("trace.pcap.zst").top(by="dport")   # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError, version

from ._native import Chunk, ChunkLocator, Packet
from .capture import Capture, Flows, open
from .errors import (
    CaptureError,
    CaptureWarning,
    DecompressError,
    FilterError,
    FormatError,
    UnknownFormatError,
)
from .original import PCAPParallel
from .partition import Partition, partitions

try:
    __version__ = version("pcap-parallel")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.2.0"

__all__ = [
    "PCAPParallel",
    "open",
    "partitions",
    "Partition",
    "Capture",
    "Flows",
    "Chunk",
    "ChunkLocator",
    "Packet",
    "CaptureError",
    "CaptureWarning",
    "FormatError",
    "DecompressError",
    "UnknownFormatError",
    "FilterError",
]
