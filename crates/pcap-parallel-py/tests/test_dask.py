"""pcap_parallel.dask on a real Dask cluster: a distributed.LocalCluster
with 2 worker processes on loopback, started by the tests. map_chunks over
corpus files in byte-range partitions equals the single-machine reading;
fooled guesses are recomputed (counted); a worker killed mid-run is retried
by Dask and the result is still exact; damage gives the results before it
and the error on the driver."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import distributed

import pcap_parallel
from pcap_parallel import dask as ppd
from conftest import SAMPLE, Fingerprint
from test_partitions import damaged_sample, embedded_pcap, well_formed


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=40,
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def packet_rows(f):
    """Per partition, on a worker: (data, len, ts) of each packet of the
    standalone capture it receives."""
    import pcap_parallel

    return [(p.tobytes(), p.len, p.ts) for p in pcap_parallel.open(f, workers=1).packets()]


def fingerprint(results) -> Fingerprint:
    fp = Fingerprint()
    for rows in results:
        for data, orig_len, ts in rows:
            fp.add(data, orig_len, ts)
    return fp


def test_map_chunks_equals_the_single_machine_reading(client, manifest):
    rows = well_formed(manifest)
    for size in (97, 1024, 64 << 10):
        # One task per partition: at 97 bytes the files of up to 16 KiB, at
        # 1 KiB those up to 256 KiB, at 64 KiB all (test_partitions.py reads
        # every file at every size without a cluster).
        limit = {97: 16 << 10, 1024: 256 << 10}.get(size)
        chosen = [r for r in rows if limit is None or int(r["size_bytes"]) <= limit]
        # One call over many files: results in file order, files one after another.
        results = ppd.map_chunks(packet_rows, [str(r["path"]) for r in chosen], partition_size=size, client=client)
        fp = fingerprint(results)
        want = Fingerprint()
        for r in chosen:
            for p in pcap_parallel.open(str(r["path"])).packets():
                want.add_packet(p)
            assert int(r["packets_parser"]) >= 0
        assert fp.packets == sum(int(r["packets_parser"]) for r in chosen), size
        assert (fp.data.hexdigest(), fp.records.hexdigest()) == (want.data.hexdigest(), want.records.hexdigest()), size


def test_each_file_matches_the_manifest(client, manifest):
    rows = [r for r in well_formed(manifest) if 4 << 10 <= int(r["size_bytes"]) <= 4 << 20]
    assert len(rows) >= 15
    for r in rows:
        results = ppd.map_chunks(packet_rows, str(r["path"]), partition_size=64 << 10, client=client)
        fp = fingerprint(results)
        assert fp.packets == int(r["packets_parser"]), r["file"]
        assert fp.data.hexdigest() == r["data_sha256"], r["file"]
        assert fp.records.hexdigest() == r["records_sha256"], r["file"]


def test_fooled_guesses_are_recomputed_and_exact(client, tmp_path):
    path = tmp_path / "embedded.pcap"
    path.write_bytes(embedded_pcap())
    results = ppd.map_chunks(packet_rows, str(path), partition_size=700, client=client)
    assert results.recomputed > 0
    want = [(p.tobytes(), p.len, p.ts) for p in pcap_parallel.open(str(path)).packets()]
    assert [row for rows in results for row in rows] == want


def test_a_glob_and_a_compressed_file(client, manifest, corpus):
    gz = [r for r in manifest if r["compression"] == "gzip" and r["parser_status"] == "ok"]
    results = ppd.map_chunks(packet_rows, [str(corpus / "*nfs*.pcap"), str(gz[0]["path"])], partition_size=4096, client=client)
    names = sorted((corpus).glob("*nfs*.pcap"))
    assert names
    want = []
    for p in [*map(str, names), str(gz[0]["path"])]:
        want += [(q.tobytes(), q.len, q.ts) for q in pcap_parallel.open(p).packets()]
    assert [row for rows in results for row in rows] == want


def slow_count(f):
    import time

    import pcap_parallel

    time.sleep(0.05)
    return sum(1 for _ in pcap_parallel.open(f, workers=1).packets())


def test_a_worker_killed_mid_run_is_retried_and_the_result_exact(client):
    expected = pcap_parallel.open(str(SAMPLE)).count()
    pids = [w.process.pid for w in client.cluster.workers.values()]
    assert len(pids) == 2
    done: dict = {}

    def run():
        done["results"] = ppd.map_chunks(slow_count, str(SAMPLE), partition_size=2048, client=client)

    t = threading.Thread(target=run)
    t.start()
    # Kill one worker process once tasks are running on it.
    deadline = time.time() + 30
    while time.time() < deadline and not any(client.processing().values()):
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(pids[0], signal.SIGKILL)
    t.join(timeout=300)
    assert not t.is_alive()
    assert sum(done["results"]) == expected
    # The cluster has its two workers again (the nanny restarted the killed one).
    client.wait_for_workers(2, timeout=60)
    assert pids[0] not in [w.process.pid for w in client.cluster.workers.values()]


def test_damage_gives_the_results_before_it_and_the_error_on_the_driver(client, tmp_path):
    path, off = damaged_sample(tmp_path)
    with pytest.raises(pcap_parallel.FormatError) as sequential:
        pcap_parallel.open(str(path)).count()
    with pytest.raises(pcap_parallel.FormatError) as e:
        ppd.map_chunks(slow_count, str(path), partition_size=4096, client=client)
    assert (e.value.file, e.value.offset, e.value.packet) == (str(path), off, 300)
    assert str(e.value) == str(sequential.value)
    assert sum(e.value.results) == 299
