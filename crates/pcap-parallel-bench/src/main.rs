//! The benchmark suite.
//!
//! ```text
//! cargo build --release --workspace
//! ./target/release/pcap-parallel-bench [--runs N] [--sizes 200M,1G] [--data DIR] [--quick]
//! ```
//!
//! It generates its own captures (deterministic, from a seed) into the data
//! directory, times whole commands (a warm-up run, then N runs; median and
//! spread), samples each command's memory (peak RSS, and the peaks of its
//! anonymous and file-backed parts, since the pages of a memory-mapped input
//! are page cache, not heap), and prints every figure with its ratio to the
//! baseline measured in the same run: `cat` for plain files, the matching
//! decompressor for compressed ones, `editcap -c` for splitting, `capinfos`,
//! `tshark`, and the original Python package's README example. It also
//! measures parallel scaling of a CPU-heavy closure in-process. Results go to
//! standard output as Markdown and to `DATA/results.json`.

mod packet_table;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod parallel_decode;

use pcap_parallel::{Capture, Split};
use pcap_synth::{Format, Synth};
use serde_json::json;
use sha2::{Digest, Sha256};

struct Opts {
    data: PathBuf,
    runs: usize,
    sizes: Vec<(String, u64)>,
    quick: bool,
    /// Only the rows of parallel decoding (`parallel_decode.rs`).
    decode_only: bool,
    /// Only the rows of packet tables (`packet_table.rs`).
    table_only: bool,
}

fn parse_args() -> Opts {
    let mut o = Opts {
        data: PathBuf::from("bench/data"),
        runs: 5,
        sizes: vec![("200M".into(), 200 << 20), ("1G".into(), 1 << 30)],
        quick: false,
        decode_only: false,
        table_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => o.runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--data" => o.data = PathBuf::from(args.next().expect("--data DIR")),
            "--quick" => o.quick = true,
            "--decode-only" => o.decode_only = true,
            "--table-only" => o.table_only = true,
            "--sizes" => {
                o.sizes = args
                    .next()
                    .expect("--sizes 200M,1G")
                    .split(',')
                    .map(|s| {
                        let (n, unit) = s.split_at(s.len() - 1);
                        let mult = match unit {
                            "M" => 1u64 << 20,
                            "G" => 1 << 30,
                            _ => panic!("sizes end in M or G: {s}"),
                        };
                        (s.to_string(), n.parse::<u64>().expect("a number") * mult)
                    })
                    .collect()
            }
            _ => {
                eprintln!(
                    "usage: pcap-parallel-bench [--runs N] [--sizes 200M,1G] [--data DIR] [--quick] [--decode-only]"
                );
                std::process::exit(2);
            }
        }
    }
    o
}

/// One command's figures over its runs.
#[derive(Debug, Clone)]
struct Measure {
    name: String,
    secs: Vec<f64>,
    peak_rss_kb: u64,
    peak_anon_kb: u64,
    peak_file_kb: u64,
    /// Major page faults (pages read from disk) over the timed runs: not
    /// zero when the input was not all in the page cache.
    major_faults: u64,
}

impl Measure {
    fn median(&self) -> f64 {
        let mut v = self.secs.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    }
    fn spread(&self) -> (f64, f64) {
        let min = self.secs.iter().copied().fold(f64::MAX, f64::min);
        let max = self.secs.iter().copied().fold(0.0, f64::max);
        (min, max)
    }
}

fn which(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Reads RssAnon and RssFile (KiB) of a running process.
fn rss(pid: i32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |k: &str| -> Option<u64> {
        s.lines()
            .find(|l| l.starts_with(k))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("RssAnon:")?, field("RssFile:")?))
}

/// One run: wall time, sampled peaks of resident memory (anonymous,
/// file-backed), major page faults.
struct Run {
    secs: f64,
    anon_kb: u64,
    file_kb: u64,
    major_faults: u64,
}

/// Runs `argv` once with stdout to /dev/null; wall time, the sampled
/// peaks of its resident memory and its major page faults. Sampling every
/// 2 ms can miss a short peak; rusage's maxrss is not used because it
/// counts what the child inherited from this process before exec.
fn run_once(argv: &[String], stdin: Option<&Path>, before: &dyn Fn()) -> Run {
    before();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(p) = stdin {
        cmd.stdin(File::open(p).expect("stdin file"));
    }
    let start = Instant::now();
    // Reaped by wait4 below, which also gives the exit status while memory is sampled.
    #[allow(clippy::zombie_processes)]
    let child = cmd.spawn().unwrap_or_else(|e| panic!("{}: {e}", argv[0]));
    let pid = child.id() as i32;
    let (mut anon, mut file) = (0, 0);
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut status = 0;
    loop {
        // SAFETY: wait4 on our own child, with valid pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        if let Some((a, f)) = rss(pid) {
            anon = anon.max(a);
            file = file.max(f);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let secs = start.elapsed().as_secs_f64();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{argv:?} failed (status {status})"
    );
    Run {
        secs,
        anon_kb: anon,
        file_kb: file,
        major_faults: usage.ru_majflt as u64,
    }
}

/// Warm-up runs before the timed ones, at most this many: until a run
/// reads nothing from disk. (Some machines page out cold page cache on
/// their own, DAMON's `pageout` scheme on these: a capture untouched for a
/// minute is partly read from disk again, for a few runs.)
const WARM_UPS: usize = 3;

fn measure(name: &str, argv: &[String], runs: usize, stdin: Option<&Path>) -> Measure {
    measure_with(name, argv, runs, stdin, &|| {})
}

/// Like [`measure`], running `before` (untimed) ahead of every run.
fn measure_with(
    name: &str,
    argv: &[String],
    runs: usize,
    stdin: Option<&Path>,
    before: &dyn Fn(),
) -> Measure {
    // Warm-up: page cache, binaries.
    for _ in 0..WARM_UPS {
        if run_once(argv, stdin, before).major_faults == 0 {
            break;
        }
    }
    let mut m = Measure {
        name: name.to_string(),
        secs: Vec::new(),
        peak_rss_kb: 0,
        peak_anon_kb: 0,
        peak_file_kb: 0,
        major_faults: 0,
    };
    for _ in 0..runs {
        let r = run_once(argv, stdin, before);
        m.secs.push(r.secs);
        m.peak_rss_kb = m.peak_rss_kb.max(r.anon_kb + r.file_kb);
        m.peak_anon_kb = m.peak_anon_kb.max(r.anon_kb);
        m.peak_file_kb = m.peak_file_kb.max(r.file_kb);
        m.major_faults += r.major_faults;
    }
    let (min, max) = m.spread();
    eprintln!(
        "  {name}: median {:.3} s (min {min:.3}, max {max:.3}), peak RSS {} MiB (anon {} MiB), \
         {} major faults",
        m.median(),
        m.peak_rss_kb / 1024,
        m.peak_anon_kb / 1024,
        m.major_faults
    );
    m
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn sh(cmd: &str) {
    let ok = Command::new("sh")
        .args(["-c", cmd])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "failed: {cmd}");
}

/// Creates the captures and compressed copies that are missing.
fn ensure_data(o: &Opts) {
    std::fs::create_dir_all(&o.data).unwrap();
    for (label, bytes) in &o.sizes {
        for (format, ext) in [(Format::Pcap, "pcap"), (Format::Pcapng, "pcapng")] {
            let path = o.data.join(format!("{label}.{ext}"));
            if !path.exists() {
                eprintln!("generating {}", path.display());
                let tmp = path.with_extension("tmp");
                Synth::new(42)
                    .write_bytes(File::create(&tmp).unwrap(), format, *bytes)
                    .unwrap();
                std::fs::rename(tmp, &path).unwrap();
            }
        }
        for (ext, tool) in [
            ("gz", "gzip -6"),
            ("bz2", "bzip2 -9"),
            ("xz", "xz -6 -T2"),
            ("zst", "zstd -q -3"),
            ("lz4", "lz4 -q"),
        ] {
            // The larger size only in the fast formats, for memory flatness.
            if label != &o.sizes[0].0 && !matches!(ext, "gz" | "zst") {
                continue;
            }
            let src = o.data.join(format!("{label}.pcap"));
            let dst = o.data.join(format!("{label}.pcap.{ext}"));
            if !dst.exists() && which(tool.split(' ').next().unwrap()) {
                eprintln!("compressing {}", dst.display());
                sh(&format!(
                    "{tool} -c '{}' > '{}.tmp' && mv '{}.tmp' '{}'",
                    src.display(),
                    dst.display(),
                    dst.display(),
                    dst.display()
                ));
            }
        }
    }
}

/// A virtual environment with the original package, if pip can install it.
fn python_original(o: &Opts) -> Option<PathBuf> {
    let venv = o.data.join("venv");
    let python = venv.join("bin/python3");
    if !python.exists() {
        eprintln!(
            "installing pcap-parallel 0.1 and dpkt into {}",
            venv.display()
        );
        let ok = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "pcap-parallel==0.1", "dpkt"])
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("could not install the original package: skipping it");
            return None;
        }
    }
    Some(python)
}

/// Packets in a capture (to size editcap's parts like ours).
fn packets(path: &Path) -> u64 {
    Capture::open(path).unwrap().count().unwrap()
}

/// A deliberately CPU-heavy closure: hash every packet 16 times.
fn heavy(path: &Path, workers: usize) -> f64 {
    let t = Instant::now();
    let n: u64 = Capture::open(path)
        .unwrap()
        .workers(workers)
        .split(Split::Auto)
        .map_reduce(
            |c| {
                let mut acc = 0u64;
                for p in c.packets() {
                    let mut d = Sha256::digest(p.data);
                    for _ in 0..15 {
                        d = Sha256::digest(d);
                    }
                    acc = acc.wrapping_add(d[0] as u64);
                }
                acc
            },
            |a, b| a.wrapping_add(b),
        )
        .unwrap();
    std::hint::black_box(n);
    t.elapsed().as_secs_f64()
}

struct Row {
    what: String,
    ours: Measure,
    baseline: Option<Measure>,
    target: String,
}

fn main() {
    let o = parse_args();
    let exe_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let pp = exe_dir.join("pcap-parallel");
    assert!(
        pp.exists(),
        "build the CLI first: cargo build --release --workspace"
    );
    let pp = pp.to_string_lossy().to_string();
    if o.table_only {
        return packet_table::main(&o, &pp);
    }
    ensure_data(&o);
    let runs = o.runs;
    if o.decode_only {
        let rows = parallel_decode::rows(&o.data, &o.sizes[0].0, &pp, runs);
        println!("{}", table(&rows));
        return;
    }
    let out_dir = o.data.join("split-out");
    let mut rows: Vec<Row> = Vec::new();
    let python = if o.quick { None } else { python_original(&o) };
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/original_readme_example.py");

    for (label, _) in &o.sizes {
        let f = o.data.join(format!("{label}.pcap"));
        let fs = f.to_string_lossy().to_string();
        eprintln!("{label} pcap:");
        let cat = measure("cat", &s(&["cat", &fs]), runs, None);
        let info = measure("info", &s(&[&pp, "info", "-q", &fs]), runs, None);
        let top = measure(
            "top --by src",
            &s(&[&pp, "top", "-q", "--by", "src", &fs]),
            runs,
            None,
        );
        rows.push(Row {
            what: format!("info, {label} pcap"),
            ours: info.clone(),
            baseline: Some(cat.clone()),
            target: "≤ 1.5× cat".into(),
        });
        rows.push(Row {
            what: format!("top --by src, {label} pcap"),
            ours: top.clone(),
            baseline: Some(cat.clone()),
            target: "≤ 2× cat".into(),
        });
        let od = out_dir.to_string_lossy().to_string();
        let split = measure(
            "split --chunks 8",
            &s(&[
                &pp, "split", "-q", &fs, "-o", &od, "--chunks", "8", "--force",
            ]),
            runs,
            None,
        );
        if which("editcap") {
            let per = packets(&f).div_ceil(8).to_string();
            std::fs::create_dir_all(&out_dir).unwrap();
            let target = out_dir.join("editcap.pcap").to_string_lossy().to_string();
            let editcap = measure(
                "editcap -c",
                &s(&["editcap", "-c", &per, &fs, &target]),
                runs,
                None,
            );
            rows.push(Row {
                what: format!("split --chunks 8, {label} pcap"),
                ours: split,
                baseline: Some(editcap),
                target: "≥ 4× faster than editcap -c".into(),
            });
        }
        let _ = std::fs::remove_dir_all(&out_dir);
        if which("capinfos") {
            let capinfos = measure(
                "capinfos -c",
                &s(&["capinfos", "-c", &fs]),
                runs.min(3),
                None,
            );
            rows.push(Row {
                what: format!("info vs capinfos -c, {label} pcap"),
                ours: info.clone(),
                baseline: Some(capinfos),
                target: "faster".into(),
            });
        }
        if !o.quick && which("tshark") && label == &o.sizes[0].0 {
            let tshark = measure(
                "tshark -e ip.src",
                &s(&["tshark", "-n", "-r", &fs, "-T", "fields", "-e", "ip.src"]),
                1,
                None,
            );
            rows.push(Row {
                what: format!("top vs tshark -T fields -e ip.src, {label} pcap"),
                ours: top.clone(),
                baseline: Some(tshark),
                target: "faster".into(),
            });
        }
        if let Some(py) = &python {
            let r = if label == &o.sizes[0].0 {
                runs.min(3)
            } else {
                1
            };
            let orig = measure(
                "original README example",
                &s(&[&py.to_string_lossy(), &script.to_string_lossy(), &fs]),
                r,
                None,
            );
            rows.push(Row {
                what: format!("top vs original README example, {label} pcap"),
                ours: top.clone(),
                baseline: Some(orig),
                target: "≥ 200× faster".into(),
            });
        }
        let g = o.data.join(format!("{label}.pcapng"));
        let gs = g.to_string_lossy().to_string();
        eprintln!("{label} pcapng:");
        let catg = measure("cat", &s(&["cat", &gs]), runs, None);
        let infog = measure("info", &s(&[&pp, "info", "-q", &gs]), runs, None);
        let topg = measure(
            "top --by src",
            &s(&[&pp, "top", "-q", "--by", "src", &gs]),
            runs,
            None,
        );
        rows.push(Row {
            what: format!("info, {label} pcapng"),
            ours: infog,
            baseline: Some(catg.clone()),
            target: "≤ 1.5× cat".into(),
        });
        rows.push(Row {
            what: format!("top --by src, {label} pcapng"),
            ours: topg,
            baseline: Some(catg),
            target: "≤ 2× cat".into(),
        });
        // Standard input: the same bytes through a pipe.
        let stdin = measure(
            "info - (stdin)",
            &s(&[&pp, "info", "-q", "-"]),
            runs,
            Some(&f),
        );
        rows.push(Row {
            what: format!("info from stdin, {label} pcap"),
            ours: stdin,
            baseline: Some(cat),
            target: "(streamed)".into(),
        });
    }

    for (label, _) in &o.sizes {
        for (ext, tool) in [
            ("gz", "zcat"),
            ("bz2", "bzcat"),
            ("xz", "xzcat"),
            ("zst", "zstdcat"),
            ("lz4", "lz4cat"),
        ] {
            let f = o.data.join(format!("{label}.pcap.{ext}"));
            if !f.exists() || !which(tool) {
                continue;
            }
            let fs = f.to_string_lossy().to_string();
            eprintln!("{label} pcap.{ext}:");
            let r = if ext == "bz2" || ext == "xz" {
                runs.min(3)
            } else {
                runs
            };
            let dec = measure(tool, &s(&[tool, &fs]), r, None);
            let info = measure("info", &s(&[&pp, "info", "-q", &fs]), r, None);
            rows.push(Row {
                what: format!("info, {label} pcap.{ext}"),
                ours: info,
                baseline: Some(dec),
                target: format!("≥ 0.9× {tool} speed"),
            });
        }
    }

    rows.extend(parallel_decode::rows(&o.data, &o.sizes[0].0, &pp, runs));

    // Parallel scaling of a CPU-heavy closure, in-process.
    let f = o.data.join(format!("{}.pcap", o.sizes[0].0));
    let cores = pcap_parallel::default_workers();
    eprintln!("scaling (CPU-heavy closure, {}):", f.display());
    let mut one = Vec::new();
    let mut all = Vec::new();
    for _ in 0..runs.min(3) {
        one.push(heavy(&f, 1));
        all.push(heavy(&f, cores));
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (t1, tn) = (med(&mut one), med(&mut all));
    eprintln!(
        "  1 worker {t1:.3} s, {cores} workers {tn:.3} s: {:.2}×",
        t1 / tn
    );

    // Report.
    let (table_rows, table_notes) =
        packet_table::rows(&o, &pp, &o.sizes[o.sizes.len() - 1].0, packet_table::PREFIX);
    rows.extend(table_rows);
    let mut md = table(&rows);
    for n in table_notes {
        md.push_str(&format!("- {n}\n"));
    }
    let mut json_rows = Vec::new();
    for r in &rows {
        json_rows.push(json!({
            "what": r.what, "ours": r.ours.name, "secs": r.ours.secs, "median": r.ours.median(),
            "peak_rss_kb": r.ours.peak_rss_kb, "peak_anon_kb": r.ours.peak_anon_kb, "peak_file_kb": r.ours.peak_file_kb,
            "major_faults": r.ours.major_faults,
            "baseline": r.baseline.as_ref().map(|b| json!({"name": b.name, "secs": b.secs, "median": b.median(),
                "peak_rss_kb": b.peak_rss_kb, "peak_anon_kb": b.peak_anon_kb, "major_faults": b.major_faults})),
            "target": r.target,
        }));
    }
    md.push_str(&format!(
        "\nCPU-heavy closure (16 × SHA-256 per packet, {} pcap): 1 worker {t1:.3} s, {cores} workers {tn:.3} s: **{:.2}×** (target ≥ 1.8× on 2 cores)\n",
        o.sizes[0].0,
        t1 / tn
    ));
    println!("{md}");
    let report = json!({
        "machine": { "cores": cores },
        "runs": runs,
        "rows": json_rows,
        "scaling": { "one_worker_s": t1, "all_workers_s": tn, "workers": cores, "speedup": t1 / tn },
    });
    let path = o.data.join("results.json");
    let mut f = File::create(&path).unwrap();
    writeln!(f, "{}", serde_json::to_string_pretty(&report).unwrap()).unwrap();
    std::fs::write(o.data.join("results.md"), &md).unwrap();
    eprintln!("results written to {} and results.md", path.display());
}

/// The rows as a Markdown table, each with its ratio to its baseline.
fn table(rows: &[Row]) -> String {
    let mut md = String::new();
    md.push_str("| what | ours (median s) | baseline | baseline (median s) | ratio | target | peak RSS MiB (anon / file) |\n|---|---:|---|---:|---:|---|---:|\n");
    for r in rows {
        let (min, max) = r.ours.spread();
        let (bname, bmed, ratio) = match &r.baseline {
            Some(b) => {
                let ratio = r.ours.median() / b.median();
                let shown = if r.target.contains("faster") || r.target.contains("speed") {
                    format!("{:.2}× faster", b.median() / r.ours.median())
                } else {
                    format!("{ratio:.2}× {}", b.name)
                };
                (b.name.clone(), format!("{:.3}", b.median()), shown)
            }
            None => (String::new(), String::new(), String::new()),
        };
        md.push_str(&format!(
            "| {} | {:.3} ({min:.3}–{max:.3}) | {bname} | {bmed} | {ratio} | {} | {} ({} / {}) |\n",
            r.what,
            r.ours.median(),
            r.target,
            r.ours.peak_rss_kb / 1024,
            r.ours.peak_anon_kb / 1024,
            r.ours.peak_file_kb / 1024
        ));
    }
    // Timed runs that read from disk were not all in the page cache.
    let faulted: Vec<String> = rows
        .iter()
        .flat_map(|r| std::iter::once(&r.ours).chain(&r.baseline))
        .filter(|m| m.major_faults > 0)
        .map(|m| format!("{} ({})", m.name, m.major_faults))
        .collect();
    if !faulted.is_empty() {
        md.push_str(&format!(
            "\nMajor page faults in timed runs (input partly read from disk): {}\n",
            faulted.join(", ")
        ));
    }
    md
}
