//! Rows for parallel decoding of compressed files: `info` on the 200 MB
//! capture compressed in several units (bzip2 -9 blocks, xz -T2 blocks,
//! BGZF members, pzstd frames) against the single-threaded decompressor
//! and the parallel one where Debian has it (lbzip2, pixz, pigz, pzstd),
//! plus pigz `--independent` and plain gzip (one member each, decoded
//! sequentially). For each: our own sequential decoding of the same bytes
//! (read from a pipe) and our parallel decoding with one decode thread
//! (`-j 1`), the per-core rate that the projection to more cores uses.
//!
//! A baseline whose tool is missing is left out, with a note. rapidgzip
//! (parallel DEFLATE, the method for single-member gzip) is the Python
//! package's command: `pip install rapidgzip`.

use std::path::Path;

use crate::{Measure, Row, measure, s, sh, which};

/// One compressed variant of the capture: file suffix, how it is made,
/// the decompressors to compare with (`{}` stands for the file).
struct Variant {
    ext: &'static str,
    make: &'static str,
    what: &'static str,
    baselines: &'static [&'static str],
}

const VARIANTS: &[Variant] = &[
    Variant {
        ext: "bz2",
        make: "bzip2 -9 -c",
        what: "bzip2 -9",
        baselines: &["bzcat {}", "lbzip2 -d -c -n 2 {}"],
    },
    Variant {
        ext: "xz",
        make: "xz -6 -T2 -c",
        what: "xz -6 -T2 (multi-block)",
        baselines: &["xzcat {}", "pixz -d -p 2 -i {} -o /dev/null"],
    },
    Variant {
        ext: "bgzf.gz",
        make: "bgzip -@ 2 -c",
        what: "bgzip (BGZF members)",
        baselines: &["zcat {}", "bgzip -d -@ 2 -c {}"],
    },
    Variant {
        ext: "pigz-i.gz",
        make: "pigz -6 -p 2 --independent -c",
        what: "pigz --independent (one member)",
        baselines: &["zcat {}", "pigz -d -p 2 -c {}", "rapidgzip -d -P 2 -c {}"],
    },
    Variant {
        ext: "gz",
        make: "gzip -6 -c",
        what: "gzip -6 (one member)",
        baselines: &[
            "zcat {}",
            "rapidgzip -d -P 2 -c {}",
            "rapidgzip -d -P 1 -c {}",
        ],
    },
    Variant {
        ext: "pzst",
        make: "pzstd -q -3 -p 2 -c",
        what: "pzstd -3 (multi-frame)",
        baselines: &["zstdcat {}", "pzstd -q -d -p 2 -c {}"],
    },
];

/// Makes the compressed variants of `src` that are missing (and whose
/// compressor is installed); says which are left out.
fn ensure(src: &Path) {
    for v in VARIANTS {
        let dst = src.with_extension(format!("pcap.{}", v.ext));
        let tool = v.make.split(' ').next().expect("a command");
        if dst.exists() {
            continue;
        }
        if !which(tool) {
            eprintln!("note: {tool} is not installed: no {} row", v.what);
            continue;
        }
        eprintln!("compressing {}", dst.display());
        sh(&format!(
            "{} '{}' > '{}.tmp' && mv '{}.tmp' '{}'",
            v.make,
            src.display(),
            dst.display(),
            dst.display(),
            dst.display()
        ));
    }
}

/// The rows, for the first (smallest) size of the suite.
pub fn rows(data: &Path, label: &str, pp: &str, runs: usize) -> Vec<Row> {
    let src = data.join(format!("{label}.pcap"));
    ensure(&src);
    let runs = runs.min(3);
    let mut rows = Vec::new();
    for v in VARIANTS {
        let f = src.with_extension(format!("pcap.{}", v.ext));
        if !f.exists() {
            continue;
        }
        let fs = f.to_string_lossy().to_string();
        eprintln!("{label} pcap, {}:", v.what);
        let ours = measure("info", &s(&[pp, "info", "-q", &fs]), runs, None);
        let one = measure(
            "info -j 1",
            &s(&[pp, "info", "-q", "-j", "1", &fs]),
            runs,
            None,
        );
        let piped = measure(
            "info - (sequential)",
            &s(&[pp, "info", "-q", "-"]),
            runs,
            Some(&f),
        );
        let what = format!("info, {label} pcap, {}", v.what);
        rows.push(row(
            &what,
            &ours,
            &piped,
            "faster than our sequential decoding (pipe)",
        ));
        rows.push(row(
            &what,
            &ours,
            &one,
            "scaling: 2 decode threads vs 1 (faster)",
        ));
        for b in v.baselines {
            let tool = b.split(' ').next().expect("a command");
            if !which(tool) {
                eprintln!(
                    "note: {tool} is not installed: no {tool} baseline for {}",
                    v.what
                );
                continue;
            }
            let argv: Vec<String> = b
                .split(' ')
                .map(|a| if a == "{}" { fs.clone() } else { a.to_string() })
                .collect();
            let base = measure(
                b.split(' ').take(2).collect::<Vec<_>>().join(" ").as_str(),
                &argv,
                runs,
                None,
            );
            rows.push(row(&what, &ours, &base, target(v.ext, tool)));
        }
    }
    rows
}

fn row(what: &str, ours: &Measure, baseline: &Measure, target: &str) -> Row {
    Row {
        what: what.to_string(),
        ours: ours.clone(),
        baseline: Some(baseline.clone()),
        target: target.to_string(),
    }
}

/// The target for a row against `tool`.
fn target(ext: &str, tool: &str) -> &'static str {
    match (ext, tool) {
        ("bz2" | "xz" | "bgzf.gz", "bzcat" | "xzcat" | "zcat") => "≥ 1.8× faster",
        ("pzst", "zstdcat") => "≥ 1.5× faster",
        ("gz" | "pigz-i.gz", "zcat") => "no slower than today (faster)",
        _ => "compared (faster)",
    }
}
