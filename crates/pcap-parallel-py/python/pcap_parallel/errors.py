"""The exceptions and warnings pcap_parallel raises.

Every error about the capture itself carries where it happened: ``file``
(the input's name), ``offset`` (byte offset in the decompressed input) and
``packet`` (1-based number of the packet that could not be read; every
packet before it was processed). Attributes that do not apply are None.

Every exception here pickles and unpickles with those attributes (it may
cross a process boundary: a ``split()`` called in a worker process whose
error goes back to the parent). Attributes holding live objects
(``futures``: the futures of the chunks before the fault) stay behind.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

#: Attributes never pickled: live objects of the process that raised.
_LIVE = ("futures",)


def _picklable(value: Any) -> bool:
    """False for what holds futures (their locks do not pickle)."""
    if isinstance(value, Future):
        return False
    if isinstance(value, (list, tuple)):
        return not any(isinstance(v, Future) for v in value)
    return True


class _Located:
    """``file``, ``offset`` and ``packet``, settable by keyword, kept
    through pickling (live attributes dropped)."""

    file: str | None = None
    offset: int | None = None
    packet: int | None = None

    def __init__(
        self,
        *args: Any,
        file: str | None = None,
        offset: int | None = None,
        packet: int | None = None,
    ) -> None:
        super().__init__(*args)
        if file is not None:
            self.file = file
        if offset is not None:
            self.offset = offset
        if packet is not None:
            self.packet = packet

    def __reduce__(self) -> tuple:
        state = {
            k: v for k, v in self.__dict__.items() if k not in _LIVE and _picklable(v)
        }
        return (type(self), self.args, state)


class CaptureError(_Located, ValueError):
    """A capture that cannot be read as asked (a ValueError, as the original
    package's errors about its input were)."""

    #: From ``PCAPParallel.split()`` in strict mode: the futures of the
    #: chunks before the fault, all finished (their results are the
    #: callbacks' results). Not pickled.
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


class CaptureWarning(_Located, UserWarning):
    """A capture damaged after its header (cut short — the commonest case, a
    capture whose writer was killed — or a record claiming an impossible
    length): ``PCAPParallel.split()`` processed every complete packet before
    ``offset`` (packets 1 to ``packet`` - 1) and warns with this instead of
    raising, as pcap-parallel 0.1 returned the packets before the damage.

    ``python -W error`` (or ``-W error::UserWarning``, or in the program
    ``warnings.simplefilter("error", pcap_parallel.CaptureWarning)``) turns
    it into an exception;
    ``PCAPParallel(..., strict=True)`` raises the :class:`CaptureError`
    itself. ``error`` is that error."""

    #: The :class:`CaptureError` this warning stands for.
    error: CaptureError | None = None


__all__ = [
    "CaptureError",
    "FormatError",
    "DecompressError",
    "UnknownFormatError",
    "FilterError",
    "CaptureWarning",
]
