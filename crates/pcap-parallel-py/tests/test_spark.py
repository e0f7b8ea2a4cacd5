"""The ``pcap`` data source on a real Spark (``local[2]``, on 127.0.0.1,
started by the tests; Java 17): every well-formed corpus capture cut into
97-byte, 1 KiB and 64 KiB ranges reads as the single-machine table, in
Spark's types; fooled guesses are walked again and the rows stay exact; a
damaged capture fails the query with its error (FAILFAST) or gives the rows
before the fault (PERMISSIVE); a Python worker killed in the middle of a
query is retried by Spark and the rows stay exact."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pyarrow as pa
import pytest

import pcap_parallel
from conftest import SAMPLE
from test_partitions import damaged_sample, embedded_pcap, recompressed, well_formed

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ["PYSPARK_PYTHON"] = sys.executable
os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable

from pyspark.sql import SparkSession  # noqa: E402

import pcap_parallel.spark  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    session = (
        # local[2, 3]: two cores, and a failed task is tried up to 3 times
        # (as a cluster retries; plain local[2] never retries).
        SparkSession.builder.master("local[2, 3]")
        .appName("pcap-parallel-tests")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    pcap_parallel.spark.register(session)
    yield session
    session.stop()


def expected(paths, *, ts_nanos: bool = False, path_column: bool = False, **options) -> dict:
    """The single-machine tables of ``paths`` in Spark's values: widened
    integers, flow ids as signed 64 bits, times in microseconds (or
    nanoseconds), 16-byte addresses as bytes."""
    columns: dict = {}
    for p in paths:
        t = pcap_parallel.open(str(p)).to_arrow(**options)
        for name in t.schema.names:
            col = t.column(name)
            if pa.types.is_timestamp(col.type):
                col = col.cast(pa.int64()) if ts_nanos else col.cast(pa.timestamp("us", tz="UTC"), safe=False)
            values = col.to_pylist()
            if name == "flow_id":
                values = [v - (1 << 64) if v is not None and v >= 1 << 63 else v for v in values]
            if pa.types.is_timestamp(col.type):
                values = [None if v is None else v.replace(tzinfo=None) for v in values]
            columns.setdefault(name, []).extend(values)
        if path_column:
            columns.setdefault("path", []).extend([str(p)] * t.num_rows)
    return columns


def rows(df) -> dict:
    t = df.toArrow()
    out = {}
    for name in t.schema.names:
        col = t.column(name)
        values = col.to_pylist()
        if pa.types.is_timestamp(col.type):
            values = [None if v is None else v.replace(tzinfo=None) for v in values]
        out[name] = values
    return out


def load(spark, paths, **options):
    reader = spark.read.format("pcap")
    for k, v in options.items():
        reader = reader.option(k, str(v))
    return reader.load(",".join(str(p) for p in paths))


def test_every_well_formed_capture_in_ranges_equals_the_table(spark, manifest, shared_corpus):
    good = well_formed(manifest)
    for size in (97, 1024, 64 << 10):
        # A Spark task per range: the 97-byte ranges over the files up to
        # 8 KiB, 1 KiB over those up to 128 KiB, 64 KiB over all
        # (test_partitions.py reads every file at every size without Spark).
        limit = {97: 8 << 10, 1024: 128 << 10}.get(size)
        paths = [r["path"] for r in good if limit is None or int(r["size_bytes"]) <= limit]
        assert len(paths) >= (15 if shared_corpus else 10)
        df = load(spark, paths, partitionSize=size, includePathColumn="true")
        want = expected(paths, path_column=True)
        got = rows(df)
        assert list(got) == list(want)
        assert len(got["frame_number"]) == sum(int(r["packets_parser"]) for r in good if r["path"] in paths)
        for name in want:
            assert got[name] == want[name], (size, name)


def test_the_schema_is_the_tables_in_sparks_types(spark):
    df = load(spark, [SAMPLE])
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    assert types["frame_number"] == "bigint"
    assert types["ts"] == "timestamp"
    assert types["cap_len"] == types["len"] == "bigint"
    assert types["src_port"] == types["link_type"] == "int"
    assert types["ip_proto"] == types["ttl"] == "smallint"
    assert types["src_ip"] == "string"
    assert types["flow_id"] == "bigint"
    assert list(types) == pcap_parallel.open(str(SAMPLE)).to_arrow().schema.names


def test_options_columns_binary_ips_nanoseconds_and_data(spark, manifest):
    path = max(well_formed(manifest, max_size=1 << 20), key=lambda r: int(r["packets_parser"]))["path"]
    options = dict(columns=["frame_number", "ts", "src_ip", "dst_ip", "data"], ip_as="binary", data=True)
    df = load(spark, [path], partitionSize=4096, columns="frame_number,ts,src_ip,dst_ip", ipAs="binary", data="true", ts="nanoseconds")
    assert [f.dataType.simpleString() for f in df.schema.fields] == ["bigint", "bigint", "binary", "binary", "binary"]
    assert rows(df) == expected([path], ts_nanos=True, **options)


def test_group_by_counts_as_pandas(spark, manifest):
    path = max(well_formed(manifest, max_size=4 << 20), key=lambda r: int(r["packets_parser"]))["path"]
    df = load(spark, [path], partitionSize=64 << 10)
    assert df.rdd.getNumPartitions() > 4
    got = {r["src_ip"]: r["count"] for r in df.groupBy("src_ip").count().collect()}
    want = pcap_parallel.open(str(path)).to_pandas().groupby("src_ip", dropna=False).size()
    assert got == {(None if k != k else k): v for k, v in want.to_dict().items()}


def test_fooled_guesses_are_walked_again_and_exact(spark, tmp_path):
    path = tmp_path / "embedded.pcap"
    path.write_bytes(embedded_pcap())
    plan = pcap_parallel.partition.survey_local(pcap_parallel.partition.partitions(path, 700))
    assert plan.recomputed > 0
    assert rows(load(spark, [path], partitionSize=700, data="true")) == expected([path], data=True)


def test_damage_fails_the_query_or_gives_the_rows_before_it(spark, tmp_path):
    path, off = damaged_sample(tmp_path)
    with pytest.raises(pcap_parallel.FormatError) as sequential:
        pcap_parallel.open(str(path)).count()
    with pytest.raises(Exception) as e:
        load(spark, [path], partitionSize=4096).count()
    assert str(sequential.value) in str(e.value)
    assert f"at byte {off} (packet 300)" in str(e.value)
    permissive = rows(load(spark, [path], partitionSize=4096, mode="PERMISSIVE"))
    assert permissive["frame_number"] == list(range(1, 300))
    want = expected([SAMPLE])
    assert permissive == {k: v[:299] for k, v in want.items()}


def test_pcapng_sections_are_walked_again_and_exact(spark, tmp_path):
    from test_partitions import several_sections

    path = several_sections(tmp_path)
    plan = pcap_parallel.partition.survey_local(pcap_parallel.partition.partitions(path, 256))
    assert plan.recomputed > 0
    got = rows(load(spark, [path], partitionSize=256, data="true", includePathColumn="true"))
    assert got == expected([path], data=True, path_column=True)


def test_a_survey_on_the_executors_plans_the_same_scan(spark, manifest, tmp_path):
    embedded = tmp_path / "embedded.pcap"
    embedded.write_bytes(embedded_pcap())
    paths = [str(r["path"]) for r in well_formed(manifest, max_size=16 << 10)][:8] + [str(embedded)]
    ranges = sum(len(pcap_parallel.partition.partitions(p, 700)) for p in paths)
    sc = spark.sparkContext
    sc.setJobGroup("pcap-survey-test", "the survey")
    try:
        plan = pcap_parallel.spark.survey(spark, paths, partition_size=700)
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    # It ran as a Spark job of one task per range, on the executors.
    tracker = sc.statusTracker()
    (job,) = tracker.getJobIdsForGroup("pcap-survey-test")
    assert sum(tracker.getStageInfo(s).numTasks for s in tracker.getJobInfo(job).stageIds) == ranges
    df = spark.read.format("pcap").option("survey", plan).option("data", "true").load()
    assert df.rdd.getNumPartitions() > len(paths)
    assert rows(df) == expected(paths, data=True)
    # The same paths given to load() as well are accepted; others are not.
    assert spark.read.format("pcap").option("survey", plan).load(",".join(paths)).count() == len(rows(df)["ts"])
    with pytest.raises(Exception, match="not those of the survey"):
        spark.read.format("pcap").option("survey", plan).load(str(SAMPLE)).count()

    # A damaged capture: the error at the survey, or the rows before it.
    damaged, off = damaged_sample(tmp_path)
    with pytest.raises(pcap_parallel.FormatError, match=f"at byte {off} \\(packet 300\\)"):
        pcap_parallel.spark.survey(spark, [damaged], partition_size=4096)
    with pytest.warns(UserWarning, match="packet 300"):
        plan = pcap_parallel.spark.survey(spark, [damaged], partition_size=4096, mode="permissive")
    got = rows(spark.read.format("pcap").option("survey", plan).load())
    assert got == {k: v[:299] for k, v in expected([SAMPLE]).items()}


def test_a_python_worker_killed_mid_query_is_retried_and_exact(spark, tmp_path):
    # A dozen tasks of half a second each (a batch per task); each worker
    # says which process it is as it starts one, so that the test kills a
    # worker in the middle of a task, not an idle one.
    df = load(spark, [SAMPLE], partitionSize=16 << 10)
    started = str(tmp_path)
    done: dict = {}

    def slow_batches(batches):
        # Defined here so that Spark ships it by value to its workers.
        import os
        import time

        for b in batches:
            with open(os.path.join(started, str(os.getpid())), "w"):
                pass
            time.sleep(0.5)
            yield b

    def run():
        spark.sparkContext.setJobGroup("killed", "a worker is killed during this query")
        done["rows"] = rows(df.mapInArrow(slow_batches, df.schema))

    t = threading.Thread(target=run)
    t.start()
    killed = None
    deadline = time.time() + 120
    while killed is None and time.time() < deadline and t.is_alive():
        busy = os.listdir(started)
        if busy:
            killed = int(busy[0])
            time.sleep(0.1)
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    t.join(timeout=300)
    assert killed is not None, "no task was seen running"
    assert not t.is_alive()
    assert done["rows"] == expected([SAMPLE])
    # The task the killed worker ran failed, and was run again.
    tracker = spark.sparkContext.statusTracker()
    stages = [s for j in tracker.getJobIdsForGroup("killed") for s in tracker.getJobInfo(j).stageIds]
    assert sum(tracker.getStageInfo(s).numFailedTasks for s in stages) >= 1


def test_captures_on_s3_read_as_the_local_files(spark):
    import json

    from conftest import capture_file
    from test_remote import FILES, s3_server

    with s3_server() as options:
        df = load(
            spark,
            ["s3://captures/*.pcap*"],
            partitionSize=64 << 10,
            includePathColumn="true",
            storage_options=json.dumps(options),
        )
        got = rows(df)
    local = expected([capture_file(name) for name in sorted(FILES)])
    assert sorted(set(got.pop("path"))) == [f"s3://captures/{name}" for name in sorted(FILES)]
    assert got == local


@pytest.mark.parametrize("tool", ["pzstd", "lz4"])
def test_pzstd_and_legacy_lz4_captures_read_whole(spark, tmp_path, tool):
    # Issue 22, item 10: the Python magic list missed these; the library decides.
    path = recompressed(tmp_path, tool)
    got = rows(load(spark, [path, SAMPLE], partitionSize=64 << 10, includePathColumn="true"))
    assert len(got["frame_number"]) == 2000
    assert got == expected([path, SAMPLE], path_column=True)


@pytest.mark.parametrize("size", ["0", "-1", "lots", str((1 << 40) + 1)])
def test_a_partition_size_out_of_bounds_fails_the_query_clearly(spark, size):
    # Issue 22, item 11: partitionSize=0 meant a range per byte. The floor in
    # these tests is 1 byte (PCAP_PARALLEL_MIN_PARTITION_BYTES), 64 KiB by default.
    with pytest.raises(Exception, match="partitionSize must be (between 1 and 1099511627776 bytes|a whole number)"):
        load(spark, [SAMPLE], partitionSize=size).count()
    with pytest.raises(ValueError, match="partition_size must be between"):
        pcap_parallel.spark.survey(spark, [str(SAMPLE)], partition_size=0)


def test_a_same_size_rewrite_after_the_survey_fails_the_query(spark, tmp_path):
    # Issue 22, item 9: rows of two files mixed without an error, before.
    from test_partitions import rewrite_in_place, shifted

    path = tmp_path / "cap.pcap"
    path.write_bytes(SAMPLE.read_bytes())
    plan = pcap_parallel.spark.survey(spark, [str(path)], partition_size=64 << 10)
    df = spark.read.format("pcap").option("survey", plan).load()
    assert rows(df) == expected([path])
    rewrite_in_place(path, shifted(SAMPLE.read_bytes()))
    with pytest.raises(Exception, match="changed since it was partitioned"):
        df.collect()
    # A new scan partitions the file again: its new rows.
    assert rows(load(spark, [path], partitionSize=64 << 10)) == expected([path])


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("data", "ture", "data must be true or false"),
        ("includePathColumn", "sometimes", "includePathColumn must be true or false"),
        ("ts", "seconds", "ts must be 'timestamp' or 'nanoseconds'"),
        ("mode", "lenient", "mode must be FAILFAST or PERMISSIVE"),
    ],
)
def test_every_option_is_checked(spark, option, value, message):
    # Issue 22, item 11: a misspelt value was silently the default.
    with pytest.raises(Exception, match=message):
        load(spark, [SAMPLE], **{option: value}).count()
    good = {"data": "false", "includePathColumn": "no", "ts": "timestamp", "mode": "failfast"}[option]
    assert load(spark, [SAMPLE], **{option: good}).count() == 1000
