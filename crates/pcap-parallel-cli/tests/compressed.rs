//! Compressed input on the command line: zstd windows and
//! `--max-zstd-window`, lz4 legacy streams, gzip damaged in the middle.

#[path = "../../pcap-parallel/tests/common/mod.rs"]
mod common;
mod support;

use std::io::Write;
use std::process::Stdio;

use support::*;

fn info_json(args: &[&str], stdin: Option<&[u8]>) -> (Option<i32>, serde_json::Value, String) {
    let mut child = bin()
        .args(["info", "--json", "-q"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = stdin.map(<[u8]>::to_vec);
    let mut pipe = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        if let Some(bytes) = input {
            let _ = pipe.write_all(&bytes);
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let text = stdout(&out);
    let v = serde_json::from_str(text.lines().next().unwrap_or("null")).unwrap();
    (
        out.status.code(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sample_bytes() -> Vec<u8> {
    std::fs::read(sample()).unwrap()
}

#[test]
fn a_zstd_window_over_the_limit_says_which_option_reads_it() {
    // Compressed with a 1 MiB window, then the header made to claim 2 GiB,
    // as `zstd --long=31` writes when it compresses a pipe.
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    e.set_parameter(zstd::stream::raw::CParameter::WindowLog(20))
        .unwrap();
    e.write_all(&sample_bytes()).unwrap();
    let mut packed = e.finish().unwrap();
    packed[5] = (31 - 10) << 3;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.pcap.zst");
    std::fs::write(&path, &packed).unwrap();
    let p = path.to_str().unwrap();
    for (file, stdin) in [(p, None), ("-", Some(&packed[..]))] {
        let (code, _, err) = info_json(&[file], stdin);
        assert_eq!(code, Some(1), "{file}: {err}");
        assert!(
            err.contains("needs a window of 2147483648 bytes")
                && err.contains("--max-zstd-window 2G"),
            "{file}: {err}"
        );
        let (code, v, err) = info_json(&["--max-zstd-window", "2G", file], stdin);
        assert_eq!(code, Some(0), "{file}: {err}");
        assert_eq!(v["packets"], 1000, "{file}");
    }
}

#[test]
fn lz4_legacy_files_are_read() {
    let data = sample_bytes();
    let mut packed = vec![0x02, 0x21, 0x4c, 0x18];
    let block = lz4_flex::block::compress(&data);
    packed.extend((block.len() as u32).to_le_bytes());
    packed.extend(block);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy.pcap.lz4");
    std::fs::write(&path, &packed).unwrap();
    let (code, v, err) = info_json(&[path.to_str().unwrap()], None);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["packets"], 1000);
    assert_eq!(v["compression"], "lz4");
}

#[test]
fn gzip_damaged_in_the_middle_is_reported_as_gzip_damage() {
    let data = sample_bytes();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&data).unwrap();
    let packed = e.finish().unwrap();
    // A flip that inflates to the same length: only the CRC catches it.
    let broken = (packed.len() * 2 / 5..packed.len() * 3 / 5)
        .map(|at| {
            let mut b = packed.clone();
            b[at] ^= 0x10;
            b
        })
        .find(|b| {
            let mut out = Vec::new();
            let r = std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&b[..]), &mut out);
            r.is_err() && out.len() == data.len()
        })
        .expect("a flip only the CRC catches");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.pcap.gz");
    std::fs::write(&path, &broken).unwrap();
    for policy in ["stop", "skip"] {
        let (code, _, err) = info_json(&["--on-error", policy, path.to_str().unwrap()], None);
        assert_eq!(code, Some(1), "{policy}: {err}");
        let line = err.lines().last().unwrap_or_default();
        assert!(
            line.contains("gzip data is corrupt")
                && line.contains(&format!("after {} decompressed bytes", data.len()))
                && line.contains("compressed offset"),
            "{policy}: {err}"
        );
    }
}
