"""The exceptions pcap_parallel raises.

Every error about the capture itself carries where it happened: ``file``
(the input's name), ``offset`` (byte offset in the decompressed input) and
``packet`` (1-based number of the packet that could not be read; every
packet before it was processed). Attributes that do not apply are None.
"""

from __future__ import annotations


class CaptureError(ValueError):
    """A capture that cannot be read as asked (a ValueError, as the original
    package's errors about its input were)."""

    file: str | None = None
    offset: int | None = None
    packet: int | None = None
    #: From ``PCAPParallel.split()``: the futures of the chunks before the
    #: fault, all finished (their results are the callbacks' results).
    futures: list | None = None


class FormatError(CaptureError):
    """The capture's structure is broken or cut short at ``offset``, in
    ``packet``."""


class DecompressError(CaptureError):
    """The compressed data is corrupt or truncated (``offset`` counts
    decompressed bytes)."""


class UnknownFormatError(CaptureError):
    """The input is neither pcap nor pcapng (nor compressed either)."""


class FilterError(CaptureError):
    """A tcpdump filter expression that does not compile (or does not suit
    the capture's link type)."""


__all__ = [
    "CaptureError",
    "FormatError",
    "DecompressError",
    "UnknownFormatError",
    "FilterError",
]
