//! The packet table on the corpus: as many rows as the manifest has
//! packets, every column equal to what tshark shows, read back from
//! Parquet; the rows before the fault and the error for broken captures;
//! the same table for any number of workers and any chunking; `flow_id`
//! the very hash `Capture::flows` shards by.

#[path = "../../pcap-parallel/tests/common/mod.rs"]
mod common;
#[path = "../../pcap-parallel/tests/tshark/mod.rs"]
mod tshark;

use std::collections::HashMap;
use std::path::PathBuf;

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampNanosecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use arrow_select::concat::concat_batches;
use common::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use pcap_parallel::{Capture, FlowKey, Split};
use pcap_parallel_arrow::{Column, Format, PacketTable, TableOptions};
use tshark::Fields;

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples/sample.pcap")
}

/// A column of `batch` by name.
fn col<'a>(batch: &'a RecordBatch, name: &str) -> &'a dyn Array {
    batch.column_by_name(name).unwrap().as_ref()
}

fn opt<T: arrow_array::ArrowPrimitiveType>(
    a: &arrow_array::PrimitiveArray<T>,
    i: usize,
) -> Option<T::Native> {
    a.is_valid(i).then(|| a.value(i))
}

/// The rows of `batch` as [`Fields`] (the columns tshark has a field for).
fn rows_of(batch: &RecordBatch) -> Vec<Fields> {
    let number = col(batch, "frame_number").as_primitive::<UInt64Type>();
    let ts = col(batch, "ts").as_primitive::<TimestampNanosecondType>();
    let cap_len = col(batch, "cap_len").as_primitive::<UInt32Type>();
    let len = col(batch, "len").as_primitive::<UInt32Type>();
    let iface = col(batch, "interface_id").as_primitive::<UInt32Type>();
    let vlan = col(batch, "vlan").as_primitive::<UInt16Type>();
    let version = col(batch, "ip_version").as_primitive::<UInt8Type>();
    let src = col(batch, "src_ip").as_string::<i32>();
    let dst = col(batch, "dst_ip").as_string::<i32>();
    let proto = col(batch, "ip_proto").as_primitive::<UInt8Type>();
    let ttl = col(batch, "ttl").as_primitive::<UInt8Type>();
    let id = col(batch, "ip_id").as_primitive::<UInt32Type>();
    let flags = col(batch, "ip_flags").as_primitive::<UInt8Type>();
    let offset = col(batch, "frag_offset").as_primitive::<UInt16Type>();
    let sport = col(batch, "src_port").as_primitive::<UInt16Type>();
    let dport = col(batch, "dst_port").as_primitive::<UInt16Type>();
    let tcp = col(batch, "tcp_flags").as_primitive::<UInt16Type>();
    (0..batch.num_rows())
        .map(|i| Fields {
            number: number.value(i),
            time_ns: opt(ts, i).map(i128::from),
            cap_len: cap_len.value(i),
            len: len.value(i),
            interface_id: opt(iface, i),
            vlan: opt(vlan, i),
            ip_version: opt(version, i),
            src: src.is_valid(i).then(|| src.value(i).to_string()),
            dst: dst.is_valid(i).then(|| dst.value(i).to_string()),
            proto: opt(proto, i),
            ttl: opt(ttl, i),
            ip_id: opt(id, i),
            ip_flags: opt(flags, i),
            frag_offset: opt(offset, i),
            src_port: opt(sport, i),
            dst_port: opt(dport, i),
            tcp_flags: opt(tcp, i),
        })
        .collect()
}

/// The table of `path` written as Parquet and read back with the parquet
/// crate's Arrow reader.
fn parquet_round_trip(
    capture: Capture,
    options: TableOptions,
) -> (Vec<RecordBatch>, pcap_parallel::Report) {
    let schema = options.schema();
    let mut file = tempfile::tempfile().unwrap();
    let (written, report) = PacketTable::new(capture)
        .options(options)
        .write(Format::PARQUET, &mut file);
    let written = written.unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    assert_eq!(
        reader.metadata().num_row_groups() as u64,
        written.batches,
        "a row group per non-empty chunk"
    );
    let batches: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
    for b in &batches {
        assert_eq!(b.schema(), schema, "the schema survives Parquet");
    }
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows as u64, written.rows);
    (batches, report)
}

/// Compares our rows with tshark's, as the decode test does: tshark's
/// frame numbers stand in for ours where it numbers pcapng blocks that are
/// not packets, and a time outside timestamp[ns]'s range (years 1677 to
/// 2262) is null in the table.
fn differences(name: &str, ours: Vec<Fields>, theirs: &[Fields]) -> Option<String> {
    assert_eq!(ours.len(), theirs.len(), "{name}: rows");
    let bad: Vec<String> = ours
        .into_iter()
        .zip(theirs)
        .filter_map(|(mut o, t)| {
            let mut t = t.clone();
            if o.number != t.number && t.number > o.number {
                o.number = t.number;
            }
            if t.time_ns.is_some_and(|ns| i64::try_from(ns).is_err()) {
                t.time_ns = None;
            }
            (o != t).then(|| format!("ours   {o:?}\ntshark {t:?}"))
        })
        .collect();
    (!bad.is_empty()).then(|| {
        format!(
            "{name}: {} rows differ:\n{}",
            bad.len(),
            bad[..bad.len().min(3)].join("\n")
        )
    })
}

#[test]
fn every_well_formed_capture_gives_tsharks_columns_through_parquet() {
    let mut files = vec![("sample.pcap".to_string(), sample(), 1000u64)];
    for e in manifest() {
        if e.ok() && e.get("tshark_error").is_empty() {
            files.push((e.file.clone(), e.path.clone(), e.packets()));
        }
    }
    let mut failures = Vec::new();
    for (name, path, packets) in &files {
        let capture = Capture::open(path).unwrap().workers(2);
        let (batches, report) = parquet_round_trip(capture, TableOptions::default());
        assert!(
            report.input_error.is_none(),
            "{name}: {:?}",
            report.input_error
        );
        let ours: Vec<Fields> = batches.iter().flat_map(rows_of).collect();
        assert_eq!(
            ours.len() as u64,
            *packets,
            "{name}: rows = the manifest's packets"
        );
        failures.extend(differences(name, ours, &tshark::frames(path)));
    }
    assert!(files.len() > if whole_corpus() { 70 } else { 10 });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Also the captures tshark cannot read: one row per packet, in order.
#[test]
fn every_well_formed_capture_has_a_row_per_packet() {
    for e in manifest().into_iter().filter(|e| e.ok()) {
        let batches = PacketTable::new(Capture::open(&e.path).unwrap().workers(2))
            .collect()
            .unwrap();
        let numbers: Vec<u64> = batches
            .iter()
            .flat_map(|b| {
                col(b, "frame_number")
                    .as_primitive::<UInt64Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(numbers, (1..=e.packets()).collect::<Vec<_>>(), "{}", e.file);
    }
}

#[test]
fn broken_captures_give_the_rows_before_the_fault_and_the_error() {
    let broken: Vec<Entry> = manifest().into_iter().filter(|e| !e.ok()).collect();
    assert!(broken.len() >= if whole_corpus() { 9 } else { 3 });
    for e in &broken {
        let Ok(capture) = Capture::open(&e.path) else {
            continue; // not even a capture header: nothing to tabulate
        };
        let expected = Capture::open(&e.path)
            .unwrap()
            .count()
            .unwrap_err()
            .to_string();
        for split in [Split::Auto, Split::Packets(1), Split::Bytes(500)] {
            let capture = Capture::open(&e.path).unwrap().split(split).workers(2);
            let mut reader = PacketTable::new(capture).reader();
            let mut rows = 0u64;
            let mut error = None;
            for item in reader.by_ref() {
                match item {
                    Ok(b) => {
                        assert!(error.is_none(), "{}: rows after the error", e.file);
                        rows += b.num_rows() as u64;
                    }
                    Err(err) => error = Some(err.to_string()),
                }
            }
            assert_eq!(rows, e.packets(), "{}: the rows before the fault", e.file);
            let error = error.unwrap_or_else(|| panic!("{}: no error", e.file));
            assert!(
                error.contains(&expected),
                "{}: {error} / {expected}",
                e.file
            );
            assert!(reader.report().is_some_and(|r| r.input_error.is_none()));
        }
        // Written as a file: complete and valid, with those rows.
        let (batches, report) = parquet_round_trip(capture.workers(2), TableOptions::default());
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows as u64, e.packets(), "{}", e.file);
        assert_eq!(
            report.input_error.map(|x| x.to_string()),
            Some(expected),
            "{}",
            e.file
        );
    }
}

/// All columns of the whole table, concatenated.
fn whole(capture: Capture, options: TableOptions) -> RecordBatch {
    let schema = options.schema();
    let batches = PacketTable::new(capture)
        .options(options)
        .collect()
        .unwrap();
    concat_batches(&schema, &batches).unwrap()
}

#[test]
fn the_same_table_for_any_workers_and_chunking() {
    let options = TableOptions::default().with_data();
    let files = [
        "seladb__PcapPlusPlus__Tests--Pcap++Test--PcapExamples--pcapng-example.pcapng",
        "seladb__PcapPlusPlus__ip-frag.pcap",
        "seladb__PcapPlusPlus__pcapng-example.pcapng.zst",
        "seladb__PcapPlusPlus__ip6_fragments.pcap",
    ];
    for path in std::iter::once(sample()).chain(files.into_iter().filter_map(capture_file)) {
        let reference = whole(
            Capture::open(&path)
                .unwrap()
                .workers(1)
                .split(Split::Chunks(1)),
            options.clone(),
        );
        // Every packet the core library reads is a row.
        let packets = Capture::open(&path)
            .unwrap()
            .map_reduce(|c| c.packets().count(), |a, b| a + b)
            .unwrap();
        assert!(packets > 0);
        assert_eq!(reference.num_rows(), packets, "{}", path.display());
        for (workers, split) in [
            (2, Split::Auto),
            (2, Split::Packets(1)),
            (3, Split::Packets(77)),
            (2, Split::Bytes(4096)),
            (4, Split::Chunks(5)),
        ] {
            let bytes = std::fs::read(&path).unwrap();
            for capture in [
                Capture::open(&path).unwrap(),
                Capture::from_reader("stream", std::io::Cursor::new(bytes)).unwrap(),
            ] {
                let t = whole(capture.workers(workers).split(split), options.clone());
                assert!(
                    t == reference,
                    "{}: {workers} workers, {split:?}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn flow_id_is_the_hash_flows_shards_by() {
    let files = [
        "seladb__PcapPlusPlus__ip-frag.pcap",
        "appneta__tcpreplay__test.pcap",
        "the-tcpdump-group__tcpdump__pptp.pcap",
        "seladb__PcapPlusPlus__ip6_fragments.pcap",
    ];
    for path in std::iter::once(sample()).chain(files.into_iter().filter_map(capture_file)) {
        let opts = TableOptions::default().columns([Column::FrameNumber, Column::FlowId]);
        let t = whole(Capture::open(&path).unwrap().workers(2), opts.clone());
        let ids = col(&t, "flow_id").as_primitive::<UInt64Type>();
        // The same value as the library's function, packet by packet...
        let expected: Vec<u64> = Capture::open(&path)
            .unwrap()
            .map(|c| {
                c.packets()
                    .map(|p| {
                        pcap_parallel::flow::flow_hash(p.link_type, p.data, FlowKey::FiveTuple)
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap()
            .concat();
        assert_eq!(ids.values().to_vec(), expected, "{}", path.display());
        // ...and the shard it gives is the one `flows(k)` puts the packet in.
        let k = 7;
        let shard_of: HashMap<u64, usize> = Capture::open(&path)
            .unwrap()
            .flows(k)
            .fold(
                |s| (s, Vec::new()),
                |(_, v), p| v.push(p.number),
                |_, (s, v)| (s, v),
            )
            .unwrap()
            .into_iter()
            .flat_map(|(s, v)| v.into_iter().map(move |n| (n, s)))
            .collect();
        let numbers = col(&t, "frame_number").as_primitive::<UInt64Type>();
        for i in 0..t.num_rows() {
            let shard = (((ids.value(i) >> 32) * k as u64) >> 32) as usize;
            assert_eq!(shard, shard_of[&numbers.value(i)]);
        }
        // Through GRE, the columns change but not the flow id.
        let gre = whole(
            Capture::open(&path).unwrap().workers(2),
            opts.tunnels(pcap_parallel::decode::Tunnels::Gre),
        );
        assert!(gre.column_by_name("flow_id") == t.column_by_name("flow_id"));
    }
}

/// The captured bytes, and addresses as 16 bytes.
#[test]
fn data_and_binary_addresses() {
    let path = sample();
    let opts = TableOptions::default()
        .columns([Column::SrcIp, Column::DstIp, Column::Data])
        .ip_format(pcap_parallel_arrow::IpFormat::Binary);
    let t = whole(Capture::open(&path).unwrap(), opts);
    let text = whole(Capture::open(&path).unwrap(), TableOptions::default());
    let data = col(&t, "data").as_binary::<i32>();
    let src = col(&t, "src_ip").as_fixed_size_binary();
    let src_text = col(&text, "src_ip").as_string::<i32>();
    let packets: Vec<Vec<u8>> = Capture::open(&path)
        .unwrap()
        .map(|c| c.packets().map(|p| p.data.to_vec()).collect::<Vec<_>>())
        .unwrap()
        .concat();
    assert_eq!(packets.len(), t.num_rows());
    let mut v4 = 0;
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(data.value(i), &p[..]);
        let bytes: [u8; 16] = src.value(i).try_into().unwrap();
        let addr = std::net::Ipv6Addr::from(bytes);
        let shown = match addr.to_ipv4_mapped() {
            Some(a) => {
                v4 += 1;
                a.to_string()
            }
            None => addr.to_string(),
        };
        assert_eq!(shown, src_text.value(i));
    }
    assert!(v4 > 0 && v4 < packets.len(), "both families");
}

fn read_ipc(bytes: &[u8], file: bool) -> Vec<RecordBatch> {
    if file {
        arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes.to_vec()), None)
            .unwrap()
            .map(Result::unwrap)
            .collect()
    } else {
        arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

/// Arrow IPC (file and stream), CSV and NDJSON say what the batches say.
#[test]
fn every_format_holds_the_same_rows() {
    let path = sample();
    let options = TableOptions::default();
    let reference = whole(Capture::open(&path).unwrap(), options.clone());
    let run = |format: Format| -> Vec<u8> {
        let mut out = Vec::new();
        let (w, report) = PacketTable::new(Capture::open(&path).unwrap().split(Split::Packets(13)))
            .write(format, &mut out);
        assert_eq!(w.unwrap().rows as usize, reference.num_rows());
        assert!(report.input_error.is_none());
        out
    };
    for (format, file) in [(Format::ArrowFile, true), (Format::ArrowStream, false)] {
        let batches = read_ipc(&run(format), file);
        assert!(
            concat_batches(&options.schema(), &batches).unwrap() == reference,
            "{format:?}"
        );
    }
    let rows = rows_of(&reference);
    let csv = String::from_utf8(run(Format::Csv)).unwrap();
    let mut lines = csv.lines();
    let names: Vec<&str> = options.selected().iter().map(|c| c.name()).collect();
    assert_eq!(lines.next().unwrap(), names.join(","));
    let ndjson = String::from_utf8(run(Format::Ndjson)).unwrap();
    let objects: Vec<serde_json::Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), rows.len());
    for ((line, object), row) in lines.zip(&objects).zip(&rows) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), names.len());
        let cell = |name: &str| cells[names.iter().position(|n| *n == name).unwrap()];
        assert_eq!(cell("frame_number"), row.number.to_string());
        assert_eq!(cell("src_ip"), row.src.clone().unwrap_or_default());
        assert_eq!(
            cell("src_port"),
            row.src_port.map(|p| p.to_string()).unwrap_or_default()
        );
        assert_eq!(object["frame_number"], row.number);
        assert_eq!(object["src_ip"].as_str(), row.src.as_deref());
        assert_eq!(object["tcp_flags"].as_u64(), row.tcp_flags.map(u64::from));
        assert_eq!(object["vlan"].as_u64(), row.vlan.map(u64::from));
        // The time, to the nanosecond, in both (RFC 3339, UTC).
        match row.time_ns {
            Some(ns) => {
                let frac = format!(".{:09}", ns.rem_euclid(1_000_000_000));
                assert!(
                    cell("ts").ends_with(&format!("{frac}Z")),
                    "{} {frac}",
                    cell("ts")
                );
                let shown = object["ts"].as_str().unwrap();
                assert!(shown.starts_with(&cell("ts")[..19]), "{shown}");
            }
            None => {
                assert_eq!(cell("ts"), "");
                assert!(object["ts"].is_null());
            }
        }
    }
}

/// Dropping a reader early stops the work (and does not hang).
#[test]
fn a_reader_dropped_early_stops() {
    let capture = Capture::open(sample())
        .unwrap()
        .split(Split::Packets(10))
        .workers(2);
    let mut reader = PacketTable::new(capture).reader();
    let first = reader.next().unwrap().unwrap();
    assert_eq!(first.num_rows(), 10);
    drop(reader);
    // And one read to the end reports what it did.
    let capture = Capture::open(sample())
        .unwrap()
        .split(Split::Packets(10))
        .workers(2);
    let mut reader = PacketTable::new(capture).reader();
    let rows: usize = reader.by_ref().map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 1000);
    assert_eq!(reader.report().unwrap().packets_read, 1000);
}

/// A reader read to its end has its report before the input is released
/// (the stream does not wait for a mapped file to be unmapped), and
/// dropping it releases the input: the file's map is gone.
#[cfg(target_os = "linux")]
#[test]
fn a_reader_read_to_its_end_releases_its_input_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("held.pcap");
    std::fs::copy(sample(), &path).unwrap();
    let name = path.to_str().unwrap().to_owned();
    let mapped = || {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .contains(&name)
    };
    let capture = Capture::open(&path)
        .unwrap()
        .split(Split::Packets(10))
        .workers(2);
    let mut reader = PacketTable::new(capture).reader();
    let mut rows = reader.next().unwrap().unwrap().num_rows();
    assert!(mapped(), "the input is mapped while it is read");
    rows += reader
        .by_ref()
        .map(|b| b.unwrap().num_rows())
        .sum::<usize>();
    assert_eq!(rows, 1000);
    assert_eq!(reader.report().unwrap().packets_read, 1000);
    drop(reader);
    assert!(
        !mapped(),
        "the input is unmapped once the reader is dropped"
    );
}

/// A filter keeps its packets' numbers; the table has only those rows.
#[test]
fn a_filtered_table_keeps_frame_numbers() {
    let Ok(filter) = pcap_parallel::filter::Filter::new("tcp") else {
        panic!("libpcap is installed (the filter tests need it too)");
    };
    let t = whole(
        Capture::open(sample()).unwrap().filter(filter),
        TableOptions::default(),
    );
    let all = whole(Capture::open(sample()).unwrap(), TableOptions::default());
    let proto = col(&all, "ip_proto").as_primitive::<UInt8Type>();
    let vlan = col(&all, "vlan").as_primitive::<UInt16Type>();
    // libpcap's `tcp` does not look behind VLAN tags.
    let expected: Vec<u64> = (0..all.num_rows())
        .filter(|&i| opt(proto, i) == Some(6) && vlan.is_null(i))
        .map(|i| i as u64 + 1)
        .collect();
    let numbers = col(&t, "frame_number").as_primitive::<UInt64Type>();
    assert_eq!(numbers.values().to_vec(), expected);
}
