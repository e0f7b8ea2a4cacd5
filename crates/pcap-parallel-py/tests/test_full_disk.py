"""Writing a table onto a full disk is the system's error (``OSError``,
ENOSPC, with the output's path), as every Python file API gives it, not a
RuntimeError (issue 22, item 14). The disk is a real one: a 256 KiB tmpfs
mounted by the test (root only), which the Parquet file of the sample with
its packet bytes does not fit in."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

import pcap_parallel
from pcap_parallel import _table
from conftest import SAMPLE


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "csv"])
def test_a_full_disk_is_an_oserror_with_its_errno(small_disk, fmt):
    out = small_disk / f"table.{fmt}"
    cap = pcap_parallel.open(str(SAMPLE))
    with pytest.raises(OSError) as e:
        if fmt == "parquet":
            cap.write_parquet(out, data=True, compression="none")
        else:  # what the CLI's table -o writes, through the same function
            _table.write(cap, out, fmt, "none", False, None, True, "text", None)
    assert e.value.errno == errno.ENOSPC, e.value
    assert e.value.filename == str(out)
    assert "No space left on device" in str(e.value)
    # Nothing half-written is left under the output's name.
    assert not out.exists()
    # The same table fits once there is room: the error was the disk's.
    assert cap.write_parquet(small_disk.parent / "fits.parquet", data=True, compression="none") == 1000

