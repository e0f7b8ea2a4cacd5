//! `pcap-parallel table` through the real binary: every format, to files
//! and to standard output, read back with the Arrow and Parquet readers
//! and compared with the library's table; the options; broken input;
//! atomic output under interruption.

#[path = "../../pcap-parallel/tests/common/mod.rs"]
mod common;
mod support;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use common::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use pcap_parallel::Capture;
use pcap_parallel_arrow::{PacketTable, TableOptions};
use support::*;

/// The library's table of `path` (all default columns), concatenated.
fn library_table(path: &Path, options: TableOptions) -> RecordBatch {
    let schema = options.schema();
    let batches = PacketTable::new(Capture::open(path).unwrap())
        .options(options)
        .collect()
        .unwrap();
    arrow_select::concat::concat_batches(&schema, &batches).unwrap()
}

fn concat(batches: Vec<RecordBatch>) -> RecordBatch {
    let schema = batches[0].schema();
    arrow_select::concat::concat_batches(&schema, &batches).unwrap()
}

fn read_parquet(path: &Path) -> RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    concat(reader.map(Result::unwrap).collect())
}

fn read_ipc_stream(bytes: &[u8]) -> RecordBatch {
    let r = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    concat(r.map(Result::unwrap).collect())
}

fn read_ipc_file(path: &Path) -> RecordBatch {
    let r =
        arrow_ipc::reader::FileReader::try_new(std::fs::File::open(path).unwrap(), None).unwrap();
    concat(r.map(Result::unwrap).collect())
}

#[test]
fn parquet_and_arrow_files_hold_the_librarys_table() {
    let dir = tempfile::tempdir().unwrap();
    // A compressed pcapng with two link types, shipped in samples/real.
    let input = capture_file("seladb__PcapPlusPlus__pcapng-example.pcapng.zst").unwrap();
    let reference = library_table(&input, TableOptions::default());
    let i = input.to_str().unwrap();
    let pq = dir.path().join("t.parquet");
    for (args, read) in [
        (vec!["-j", "1"], 0),
        (vec!["-j", "2", "--packets", "7"], 0),
        (vec!["--compression", "snappy", "--chunks", "3"], 0),
        (vec!["--format", "arrow"], 1),
    ] {
        let out = if read == 0 {
            pq.clone()
        } else {
            dir.path().join("t.feather")
        };
        let o = out.to_str().unwrap();
        let mut argv = vec!["table", "-q", i, "-o", o, "--force"];
        argv.extend(&args);
        let r = run(&argv);
        assert!(
            r.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert!(r.stdout.is_empty(), "standard output carries nothing");
        let t = if read == 0 {
            read_parquet(&out)
        } else {
            read_ipc_file(&out)
        };
        assert!(t == reference, "{args:?}");
    }
    // Parquet is zstd-compressed unless asked otherwise, a row group per chunk.
    let r = run(&[
        "table",
        "-q",
        i,
        "-o",
        pq.to_str().unwrap(),
        "--force",
        "--chunks",
        "4",
    ]);
    assert!(r.status.success());
    let meta = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&pq).unwrap())
        .unwrap()
        .metadata()
        .clone();
    assert_eq!(meta.num_row_groups(), 4);
    let codec = meta.row_group(0).column(0).compression();
    assert!(
        matches!(codec, parquet::basic::Compression::ZSTD(_)),
        "{codec:?}"
    );
    // The same chunking gives the same bytes, whatever the worker count.
    let one = dir.path().join("one.parquet");
    let two = dir.path().join("two.parquet");
    for (out, j) in [(&one, "1"), (&two, "3")] {
        let r = run(&[
            "table",
            "-q",
            i,
            "-o",
            out.to_str().unwrap(),
            "--chunks",
            "5",
            "-j",
            j,
        ]);
        assert!(r.status.success());
    }
    assert_eq!(std::fs::read(&one).unwrap(), std::fs::read(&two).unwrap());
}

#[test]
fn standard_output_in_every_streamable_format() {
    let s = sample();
    let reference = library_table(&s, TableOptions::default());
    let s = s.to_str().unwrap();
    let r = run(&["table", "-q", s, "-o", "-", "--format", "arrow-stream"]);
    assert!(r.status.success());
    assert!(read_ipc_stream(&r.stdout) == reference);
    let r = run(&["table", "-q", s, "-o", "-", "--format", "parquet"]);
    assert!(r.status.success());
    let t = concat(
        ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(r.stdout))
            .unwrap()
            .build()
            .unwrap()
            .map(Result::unwrap)
            .collect(),
    );
    assert!(t == reference);
    let r = run(&[
        "table",
        "-q",
        s,
        "-o",
        "-",
        "--format",
        "csv",
        "--columns",
        "frame_number,src_ip",
    ]);
    let csv = stdout(&r);
    let src = reference
        .column_by_name("src_ip")
        .unwrap()
        .as_string::<i32>();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("frame_number,src_ip"));
    for (n, line) in lines.enumerate() {
        let value = if src.is_null(n) { "" } else { src.value(n) };
        assert_eq!(line, format!("{},{value}", n + 1));
    }
    let r = run(&["table", "-q", s, "-o", "-", "--format", "ndjson", "-c", "5"]);
    assert_eq!(stdout(&r).lines().count(), 5);
    // A device is written to as it is (no temporary file beside it, no --force).
    let r = run(&["table", "-q", s, "-o", "/dev/null", "--format", "arrow"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // Standard output needs a format named.
    let r = run(&["table", "-q", s, "-o", "-"]);
    assert_eq!(r.status.code(), Some(2));
}

#[test]
fn columns_data_addresses_filters_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample();
    let ss = s.to_str().unwrap();
    let out = dir.path().join("t.parquet");
    let o = out.to_str().unwrap();
    let table = |args: &[&str]| -> RecordBatch {
        let mut argv = vec!["table", "-q", ss, "-o", o, "--force"];
        argv.extend(args);
        let r = run(&argv);
        assert!(
            r.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        read_parquet(&out)
    };
    let t = table(&["--columns", "dst_port,ts,src_ip", "--data"]);
    let schema = t.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["dst_port", "ts", "src_ip", "data"]);
    let t = table(&["--ip-as", "binary", "--columns", "src_ip"]);
    assert_eq!(
        t.schema().field(0).data_type(),
        &DataType::FixedSizeBinary(16)
    );
    let t = table(&["-c", "17", "--columns", "frame_number"]);
    assert_eq!(t.num_rows(), 17);
    // A filter: the rows of the packets it keeps, with their numbers.
    let t = table(&["--filter", "udp", "--columns", "frame_number"]);
    let filter = pcap_parallel::filter::Filter::new("udp").unwrap();
    let kept: Vec<u64> = Capture::open(&s)
        .unwrap()
        .filter(filter)
        .map(|c| c.packets().map(|p| p.number).collect::<Vec<_>>())
        .unwrap()
        .concat();
    assert!(!kept.is_empty() && kept.len() < 1000);
    assert_eq!(
        t.column(0).as_primitive::<UInt64Type>().values().to_vec(),
        kept
    );
    // Usage errors: exit status 2, and nothing written.
    std::fs::remove_file(&out).unwrap();
    for bad in [
        &["--columns", "frame_number,nonsense"][..],
        &["--flows", "4"][..],
        &["--format", "xml"][..],
    ] {
        let mut argv = vec!["table", "-q", ss, "-o", o];
        argv.extend(bad);
        let r = run(&argv);
        assert_eq!(r.status.code(), Some(2), "{bad:?}");
        assert!(!out.exists(), "{bad:?}");
    }
    let r = run(&[
        "table",
        "-q",
        ss,
        "-o",
        dir.path().join("t.txt").to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2), "no format from .txt");
}

#[test]
fn an_existing_output_is_kept_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.parquet");
    std::fs::write(&out, b"precious").unwrap();
    let r = run(&[
        "table",
        "-q",
        sample().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--force"));
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
}

#[test]
fn a_broken_capture_gives_its_rows_and_the_error() {
    let dir = tempfile::tempdir().unwrap();
    for e in manifest()
        .into_iter()
        .filter(|e| !e.ok() && e.packets() > 0)
    {
        let out = dir.path().join(format!("{}.parquet", e.file));
        let r = run(&[
            "table",
            "-q",
            e.path.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(r.status.code(), Some(1), "{}", e.file);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains(&e.file) && err.contains("at byte"), "{err}");
        let t = read_parquet(&out);
        assert_eq!(t.num_rows() as u64, e.packets(), "{}", e.file);
    }
}

/// SIGINT in the middle of a table: exit 130, no output, no temporary file.
#[test]
fn an_interrupted_table_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.parquet");
    let mut child = bin()
        .args([
            "table",
            "-q",
            "-",
            "-o",
            out.to_str().unwrap(),
            "--packets",
            "100",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Some packets (more than the first block read to tell the format),
    // and the pipe kept open: the table is not finished.
    let mut capture = Vec::new();
    pcap_synth::Synth::new(3)
        .write(&mut capture, pcap_synth::Format::Pcap, 20_000)
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&capture).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    // Ctrl-C stops the writer of the pipe too (the shell signals the whole
    // pipeline): the input ends.
    drop(stdin);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no hang");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A named pipe is written to as it is, even with --force: never replaced
/// by a regular file (nor is any other special file, /dev/null included).
#[test]
fn a_named_pipe_is_written_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let s = sample();
    let r = run(&[
        "table",
        "-q",
        s.to_str().unwrap(),
        "-o",
        fifo.to_str().unwrap(),
        "--format",
        "arrow-stream",
        "--force",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let bytes = reader.join().unwrap();
    assert_eq!(read_ipc_stream(&bytes).num_rows(), 1000);
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file"
    );
}

/// Standard output closed early (`| head -1`): a quiet end, exit 141, as
/// every command; a filter that does not suit the capture: exit 2, no file.
#[test]
fn a_closed_pipe_and_an_unsuitable_filter() {
    let mut child = bin()
        .args([
            "table",
            "-q",
            sample().to_str().unwrap(),
            "-o",
            "-",
            "--format",
            "csv",
        ])
        .args(["--packets", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut out, &mut first).unwrap();
    drop(out);
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(141));
    assert!(
        done.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.parquet");
    let raw = capture_file("seladb__PcapPlusPlus__raw_ip.pcap").unwrap();
    let r = run(&[
        "table",
        "-q",
        raw.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--filter",
        "ether host 00:11:22:33:44:55",
    ]);
    assert_eq!(
        r.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
