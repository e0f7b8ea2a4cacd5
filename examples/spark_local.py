"""Packet tables on Spark: the ``pcap`` data source in a local Spark (two
cores, bound to 127.0.0.1).

    pip install 'pcap-parallel[spark]'           # and Java 17 or later
    python examples/spark_local.py [CAPTURE]     # default: samples/sample.pcap

On a cluster, build the session for it instead (``SparkSession.builder
.master("spark://...")`` or spark-submit) with pcap-parallel installed on
the executors, and give paths every executor can read.

Prints, one per line: ``rows N`` (rows of the scan, surveyed on the
driver), ``src ADDRESS PACKETS`` for every source address, busiest first,
then ``survey_rows N`` (the same capture read through a survey run as a
Spark job on the executors).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sample.pcap"


def main(path: str) -> None:
    # Spark's Python workers run this interpreter (where pcap-parallel is
    # installed), and everything listens on loopback only.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    import pcap_parallel.spark

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("pcap-parallel-example")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        pcap_parallel.spark.register(spark)

        # Small ranges so that a small capture is cut too (default 128 MiB).
        df = spark.read.format("pcap").option("partitionSize", 64 << 10).load(path)
        print("rows", df.count())
        by_source = df.groupBy("src_ip").count().orderBy(["count", "src_ip"], ascending=[False, True])
        for row in by_source.collect():
            if row["src_ip"] is not None:
                print("src", row["src_ip"], row["count"])

        # The survey as a Spark job (a task per range, on the executors),
        # then a scan of its plan: for captures the driver should not read.
        plan = pcap_parallel.spark.survey(spark, path, partition_size=64 << 10)
        print("survey_rows", spark.read.format("pcap").option("survey", plan).load().count())
    finally:
        spark.stop()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(SAMPLE))
