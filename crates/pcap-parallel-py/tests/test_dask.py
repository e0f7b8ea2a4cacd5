"""pcap_parallel.dask on a real Dask cluster: a distributed.LocalCluster
with 2 worker processes on loopback, started by the tests. map_chunks over
corpus files in byte-range partitions equals the single-machine reading;
fooled guesses are recomputed (counted); a worker killed mid-run is retried
by Dask and the result is still exact; damage gives the results before it
and the error on the driver."""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time

import pytest

import distributed

import pcap_parallel
from pcap_parallel import dask as ppd
from conftest import SAMPLE, Fingerprint
from test_partitions import compressed_row, damaged_sample, embedded_pcap, recompressed, well_formed


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
            # The single-machine reading of each file is the manifest's.
            one = Fingerprint()
            for p in pcap_parallel.open(str(r["path"])).packets():
                want.add_packet(p)
                one.add_packet(p)
            assert (one.packets, one.data.hexdigest(), one.records.hexdigest()) == (
                int(r["packets_parser"]), r["data_sha256"], r["records_sha256"]), r["file"]
        assert fp.packets == sum(int(r["packets_parser"]) for r in chosen), size
        assert (fp.data.hexdigest(), fp.records.hexdigest()) == (want.data.hexdigest(), want.records.hexdigest()), size


def test_each_file_matches_the_manifest(client, manifest, shared_corpus):
    rows = [r for r in well_formed(manifest) if 4 << 10 <= int(r["size_bytes"]) <= 4 << 20]
    assert len(rows) >= (15 if shared_corpus else 14)
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
    packed = compressed_row(manifest)
    results = ppd.map_chunks(packet_rows, [str(corpus / "*nfs*.pcap"), str(packed["path"])], partition_size=4096, client=client)
    names = sorted((corpus).glob("*nfs*.pcap"))
    assert names
    want = []
    for p in [*map(str, names), str(packed["path"])]:
        want += [(q.tobytes(), q.len, q.ts) for q in pcap_parallel.open(p).packets()]
    assert [row for rows in results for row in rows] == want


def slow_count(f):
    import time

    import pcap_parallel

    time.sleep(0.05)
    return sum(1 for _ in pcap_parallel.open(f, workers=1).packets())


def killing_a_worker(client, which: int, work):
    """``work()`` in a thread, one of the cluster's two worker processes
    SIGKILLed once tasks are running; returns what ``work`` returned, once
    the nanny has restarted the killed worker."""
    client.wait_for_workers(2, timeout=60)
    pids = [w.process.pid for w in client.cluster.workers.values()]
    assert len(pids) == 2
    done: dict = {}
    t = threading.Thread(target=lambda: done.setdefault("result", work()))
    t.start()
    deadline = time.time() + 30
    while time.time() < deadline and not any(client.processing().values()):
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(pids[which], signal.SIGKILL)
    t.join(timeout=300)
    assert not t.is_alive()
    # The cluster has its two workers again (the nanny restarted the killed one).
    client.wait_for_workers(2, timeout=60)
    assert pids[which] not in [w.process.pid for w in client.cluster.workers.values()]
    return done["result"]


def test_a_worker_killed_mid_run_is_retried_and_the_result_exact(client):
    expected = pcap_parallel.open(str(SAMPLE)).count()
    results = killing_a_worker(
        client, 0, lambda: ppd.map_chunks(slow_count, str(SAMPLE), partition_size=2048, client=client)
    )
    assert sum(results) == expected


def test_damage_gives_the_results_before_it_and_the_error_on_the_driver(client, tmp_path):
    path, off = damaged_sample(tmp_path)
    with pytest.raises(pcap_parallel.FormatError) as sequential:
        pcap_parallel.open(str(path)).count()
    with pytest.raises(pcap_parallel.FormatError) as e:
        ppd.map_chunks(slow_count, str(path), partition_size=4096, client=client)
    assert (e.value.file, e.value.offset, e.value.packet) == (str(path), off, 300)
    assert str(e.value) == str(sequential.value)
    assert sum(e.value.results) == 299


# --- read_pcap: packet tables as a dask dataframe ----------------------------


def arrow_frame(df) -> "pa.Table":
    """A computed dask dataframe as an Arrow table (index dropped)."""
    import pyarrow as pa

    return pa.Table.from_pandas(df, preserve_index=False)


def assert_same_rows(got, want) -> None:
    """The same column names, types and values (pandas' round trip drops
    Arrow's not-null flags, which are not compared)."""
    assert got.schema.names == want.schema.names
    assert [f.type for f in got.schema] == [f.type for f in want.schema]
    assert got.num_rows == want.num_rows
    for name in want.schema.names:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name


def sequential_table(paths, **options) -> "pa.Table":
    """The single-machine tables of ``paths``, one after another."""
    import pyarrow as pa

    tables = []
    for p in paths:
        t = pcap_parallel.open(str(p)).to_arrow(**options)
        tables.append(t.append_column("path", pa.array([str(p)] * t.num_rows, pa.string())))
    return pa.concat_tables(tables).combine_chunks()


def test_read_pcap_equals_the_single_machine_table(client, manifest):
    rows = well_formed(manifest)
    for size in (97, 1024, 64 << 10):
        # As for map_chunks: a task per partition, so the smallest
        # partitions over the smaller files (test_partitions.py reads every
        # file at every size without a cluster).
        limit = {97: 16 << 10, 1024: 256 << 10}.get(size)
        paths = [str(r["path"]) for r in rows if limit is None or int(r["size_bytes"]) <= limit]
        df = ppd.read_pcap(paths, partition_size=size, include_path_column=True, client=client)
        assert df.known_divisions, size
        got = df.compute()
        want = sequential_table(paths)
        assert len(got) == want.num_rows == sum(int(r["packets_parser"]) for r in rows if str(r["path"]) in paths)
        assert list(got.index) == list(range(len(got))), size
        assert_same_rows(arrow_frame(got), want)


def test_read_pcap_columns_divisions_and_a_survey_read_twice(client):
    survey = ppd.survey(str(SAMPLE), partition_size=8192, client=client)
    assert len(survey) == 1 and survey.packets == 1000 and survey.error is None
    df = ppd.read_pcap(survey, columns=["frame_number", "src_ip", "dst_port"], ip_as="binary")
    assert list(df.columns) == ["frame_number", "src_ip", "dst_port"]
    assert df.npartitions == len(survey[0]) > 10
    # Known divisions: a slice of the index reads only the partitions it needs.
    part = df.loc[500:520]
    assert part.npartitions <= 3 < df.npartitions // 4
    want = pcap_parallel.open(str(SAMPLE)).to_arrow(["frame_number", "src_ip", "dst_port"], ip_as="binary")
    assert part.compute()["frame_number"].tolist() == list(range(501, 522))
    assert_same_rows(arrow_frame(df.compute()), want.combine_chunks())


def test_read_pcap_group_by_equals_pandas(client, manifest):
    big = max(well_formed(manifest, max_size=8 << 20), key=lambda r: int(r["packets_parser"]))
    df = ppd.read_pcap(str(big["path"]), partition_size=256 << 10, client=client)
    got = df.groupby("src_ip").size().compute().sort_index()
    want = pcap_parallel.open(str(big["path"])).to_pandas().groupby("src_ip").size().sort_index()
    assert df.npartitions > 1
    assert got.to_dict() == want.to_dict()


def test_read_pcap_fooled_guesses_are_recomputed_and_exact(client, tmp_path):
    path = tmp_path / "embedded.pcap"
    path.write_bytes(embedded_pcap())
    survey = ppd.survey(str(path), partition_size=700, client=client)
    assert survey.recomputed > 0
    got = arrow_frame(ppd.read_pcap(survey, data=True).compute())
    assert_same_rows(got, pcap_parallel.open(str(path)).to_arrow(data=True).combine_chunks())


def test_read_pcap_a_compressed_file_is_one_partition(client, manifest):
    paths = [str(SAMPLE), str(compressed_row(manifest)["path"])]
    df = ppd.read_pcap(paths, partition_size=16 << 10, include_path_column=True, client=client)
    # The sample's ranges that hold packets, and one for the compressed file.
    assert df.npartitions == len(pcap_parallel.partitions(str(SAMPLE), 16 << 10)) + 1
    got = arrow_frame(df.compute())
    assert_same_rows(got, sequential_table(paths))


def test_read_pcap_damage_raises_on_the_driver_with_the_rows_before(client, tmp_path):
    path, off = damaged_sample(tmp_path)
    with pytest.raises(pcap_parallel.FormatError) as sequential:
        pcap_parallel.open(str(path)).count()
    with pytest.raises(pcap_parallel.FormatError) as e:
        ppd.read_pcap(str(path), partition_size=4096, client=client)
    assert (e.value.file, e.value.offset, e.value.packet) == (str(path), off, 300)
    assert str(e.value) == str(sequential.value)
    before = e.value.dataframe.compute()
    assert before["frame_number"].tolist() == list(range(1, 300))
    want = pcap_parallel.open(str(SAMPLE)).to_arrow().slice(0, 299).combine_chunks()
    assert_same_rows(arrow_frame(before), want)


def slow_rows(df):
    time.sleep(0.05)
    return df


def test_read_pcap_survives_a_worker_killed_mid_run(client):
    df = ppd.read_pcap(str(SAMPLE), partition_size=1024, client=client)
    frame = killing_a_worker(client, 1, lambda: df.map_partitions(slow_rows, meta=df._meta).compute())
    assert_same_rows(arrow_frame(frame), pcap_parallel.open(str(SAMPLE)).to_arrow().combine_chunks())


def test_read_pcap_pcapng_sections_are_recomputed_and_exact(client, tmp_path):
    from test_partitions import several_sections

    path = several_sections(tmp_path)
    survey = ppd.survey(str(path), partition_size=256, client=client)
    assert survey.recomputed > 0
    got = arrow_frame(ppd.read_pcap(survey, data=True).compute())
    assert_same_rows(got, pcap_parallel.open(str(path)).to_arrow(data=True).combine_chunks())


@pytest.mark.parametrize("tool", ["pzstd", "lz4"])
def test_pzstd_and_legacy_lz4_captures_on_the_cluster(client, tmp_path, tool):
    # Issue 22, item 10: these failed on every partition path ("zstd input
    # cannot be entered at a byte offset"): Python now asks the library.
    path = str(recompressed(tmp_path, tool))
    df = ppd.read_pcap([path, str(SAMPLE)], partition_size=64 << 10, include_path_column=True, client=client)
    got = arrow_frame(df.compute())
    assert got.num_rows == 2000
    assert_same_rows(got, sequential_table([path, str(SAMPLE)]))
    results = ppd.map_chunks(packet_rows, path, partition_size=64 << 10, client=client)
    want = [(q.tobytes(), q.len, q.ts) for q in pcap_parallel.open(str(SAMPLE)).packets()]
    assert [row for rows in results for row in rows] == want


def test_partition_sizes_out_of_bounds_are_refused_before_any_task(client, monkeypatch):
    # Issue 22, item 11: partition_size=1 meant a partition per byte (377,974
    # tasks for the sample) and brought the scheduler connection down.
    monkeypatch.delenv("PCAP_PARALLEL_MIN_PARTITION_BYTES", raising=False)
    for bad in (0, 1, 4096, -1, 1 << 41):
        with pytest.raises(ValueError, match="partition_size must be between 65536 and"):
            ppd.read_pcap(str(SAMPLE), partition_size=bad, client=client)
        with pytest.raises(ValueError, match="partition_size must be between 65536 and"):
            ppd.map_chunks(packet_rows, str(SAMPLE), partition_size=bad, client=client)
        with pytest.raises(ValueError, match="partition_size must be between 65536 and"):
            ppd.survey(str(SAMPLE), partition_size=bad, client=client)
    df = ppd.read_pcap(str(SAMPLE), partition_size=64 << 10, client=client)
    assert df.npartitions == 6 and len(df.compute()) == 1000


def test_a_same_size_rewrite_between_survey_and_read_is_an_error(client, tmp_path):
    # Issue 22, item 9: every timestamp shifted in place after the survey gave
    # partition 0's old rows and partition 1's new ones, without an error.
    from test_partitions import rewrite_in_place, shifted

    path = tmp_path / "cap.pcap"
    path.write_bytes(SAMPLE.read_bytes())
    survey = ppd.survey(str(path), partition_size=64 << 10, client=client)
    df = ppd.read_pcap(survey)
    assert len(df.partitions[0].compute()) > 0
    rewrite_in_place(path, shifted(SAMPLE.read_bytes()))
    with pytest.raises(pcap_parallel.CaptureError, match="changed since it was partitioned"):
        df.compute()
    # Surveyed again: the new rows, all of them.
    got = ppd.read_pcap(str(path), partition_size=64 << 10, client=client).compute()
    assert len(got) == 1000
    want = pcap_parallel.open(str(path)).to_pandas()
    assert got["ts"].tolist() == want["ts"].tolist()


def test_a_section_with_many_interfaces_reads_exactly_with_small_reports(client, tmp_path):
    # Issue 22, item 12: every report carried the section's whole interface
    # table (2 MB for 100k interfaces: 401 partitions took 30 s and 1.5 GB).
    from test_partitions import many_interfaces

    path = many_interfaces(tmp_path)
    survey = ppd.survey(str(path), partition_size=64 << 10, client=client)
    assert survey.packets == 3000 and survey.error is None
    biggest = max(len(pickle.dumps((p.entry, p.exit))) for p in survey[0])
    assert biggest < 64 << 10, biggest
    got = arrow_frame(ppd.read_pcap(survey, data=True).compute())
    assert_same_rows(got, pcap_parallel.open(str(path)).to_arrow(data=True).combine_chunks())
    results = ppd.map_chunks(packet_rows, str(path), partition_size=64 << 10, client=client)
    want = [(q.tobytes(), q.len, q.ts) for q in pcap_parallel.open(str(path)).packets()]
    assert [row for rows in results for row in rows] == want
