"""A capture on an object store written again (same size) between the
survey and the reading is an error, never a mix of two objects' rows
(issue 22, item 9): partitions keep the object's ETag (and version, where
the store gives one) and every read compares it."""

from __future__ import annotations

import boto3
import s3fs

import pytest

import pcap_parallel
from pcap_parallel import dask as ppd
from pcap_parallel import partition as pp
from conftest import capture_file
from test_dask import client  # noqa: F401 (the cluster fixture)
from test_partitions import shifted
from test_remote import s3  # noqa: F401 (the S3 server fixture)

NAME = "seladb__PcapPlusPlus__http-packets.pcap"


def test_an_object_rewritten_after_the_survey_is_an_error(s3, client, tmp_path):  # noqa: F811
    fs = s3fs.S3FileSystem(**s3)
    # A bucket of its own: test_remote globs "captures".
    boto3.client(
        "s3",
        endpoint_url=s3["client_kwargs"]["endpoint_url"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket="rewrites")
    url = "s3://rewrites/rewritten.pcap"
    original = capture_file(NAME).read_bytes()
    fs.pipe_file("rewrites/rewritten.pcap", original)
    survey = ppd.survey(url, partition_size=64 << 10, client=client, storage_options=s3)
    ident = pp.partitions(url, 64 << 10, storage_options=s3)[0].identity
    assert ident[0] == "remote" and ident[1] == len(original)
    assert any(k == "ETag" for k, _ in ident[2:]), ident
    df = ppd.read_pcap(survey)
    assert len(df.compute()) == pcap_parallel.open(str(capture_file(NAME))).count()

    new = shifted(original)
    assert len(new) == len(original) and new != original
    fs.pipe_file("rewrites/rewritten.pcap", new)
    with pytest.raises(pcap_parallel.CaptureError, match="changed since it was partitioned") as e:
        df.compute()
    assert "ETag" in str(e.value)
