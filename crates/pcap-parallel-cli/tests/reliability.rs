//! Nothing a user can give the binary crashes it, loses data or mixes
//! results (issue 15): crafted captures generated here, options that would
//! multiply memory, full disks, concurrent runs, signals and named pipes.
//! Each test reproduces a case of the issue through the real binary.

#[path = "../../pcap-parallel/tests/common/mod.rs"]
mod common;
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::*;

/// Little-endian pcapng blocks, for crafting captures.
mod craft {
    pub fn block(btype: u32, body: &[u8]) -> Vec<u8> {
        let padded = body.len().next_multiple_of(4);
        let len = (12 + padded) as u32;
        let mut v = btype.to_le_bytes().to_vec();
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(body);
        v.resize(8 + padded, 0);
        v.extend_from_slice(&len.to_le_bytes());
        v
    }

    pub fn shb() -> Vec<u8> {
        let mut body = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        block(0x0A0D_0D0A, &body)
    }

    /// An Ethernet interface.
    pub fn idb() -> Vec<u8> {
        let mut body = 1u16.to_le_bytes().to_vec();
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        block(1, &body)
    }

    pub fn epb(interface: u32, ticks: u64, data: &[u8]) -> Vec<u8> {
        let mut body = interface.to_le_bytes().to_vec();
        body.extend_from_slice(&((ticks >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ticks as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        block(6, &body)
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip runs");
    let mut stdin = child.stdin.take().unwrap();
    let data = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out.stdout
}

/// Runs the binary with its address space limited to `limit` bytes (and
/// one malloc arena, so that the limit measures what is allocated rather
/// than what arenas reserve), `stdin` fed from a file if given.
fn run_limited(args: &[&str], limit: u64, stdin: Option<&Path>) -> Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = bin();
    cmd.args(args).env("MALLOC_ARENA_MAX", "1");
    if let Some(p) = stdin {
        cmd.stdin(std::fs::File::open(p).unwrap());
    }
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// 15.1: a section with 100 000 interface descriptions costs memory in
/// proportion (it took 23 GB before), through a file, gzip and a pipe; and
/// a section above the interface limit fails cleanly, naming the limit.
#[test]
fn a_hundred_thousand_interfaces_cost_linear_memory() {
    const N: u32 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = craft::shb();
    for _ in 0..N {
        bytes.extend(craft::idb());
    }
    for i in 0..10u32 {
        bytes.extend(craft::epb(N - 1 - i, i as u64, &[0u8; 60]));
    }
    let plain = dir.path().join("idb.pcapng");
    std::fs::write(&plain, &bytes).unwrap();
    let gz = dir.path().join("idb.pcapng.gz");
    std::fs::write(&gz, gzip(&bytes)).unwrap();
    // 1 GiB of address space: 50 times what the run needs, a twentieth of
    // what a quadratic state took for this file.
    const LIMIT: u64 = 1 << 30;
    for (what, args, stdin) in [
        ("file", vec![plain.to_str().unwrap()], None),
        ("gzip", vec![gz.to_str().unwrap()], None),
        ("stdin", vec!["-"], Some(gz.as_path())),
    ] {
        let mut all = vec!["info", "--json", "-q"];
        all.extend(args);
        let out = run_limited(&all, LIMIT, stdin);
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["packets"], 10, "{what}");
        assert_eq!(
            v["interfaces"].as_array().unwrap().len(),
            N as usize,
            "{what}"
        );
        // Splitting carries the interfaces its packets need into each part.
        let parts = dir.path().join(format!("parts-{what}"));
        let mut all = vec!["split", "-q", "--packets", "3", "-o"];
        all.push(parts.to_str().unwrap());
        all.extend(if stdin.is_some() {
            vec!["-"]
        } else {
            vec![all_input(&plain, &gz, what)]
        });
        let out = run_limited(&all, LIMIT, stdin);
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        assert_eq!(std::fs::read_dir(&parts).unwrap().count(), 4, "{what}");
    }
    // Above the limit: exit 1, one line naming the limit, no crash.
    let out = run_limited(
        &[
            "info",
            "-q",
            "--max-interfaces",
            "50000",
            plain.to_str().unwrap(),
        ],
        LIMIT,
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("more than 50000 interfaces"),
        "{}",
        stderr(&out)
    );
}

fn all_input<'a>(plain: &'a Path, gz: &'a Path, what: &str) -> &'a str {
    if what == "gzip" {
        gz.to_str().unwrap()
    } else {
        plain.to_str().unwrap()
    }
}

/// A synthetic capture of about `bytes` bytes.
fn synthetic(dir: &Path, name: &str, bytes: u64) -> PathBuf {
    let path = dir.join(name);
    pcap_synth::Synth::new(11)
        .write_bytes(
            std::fs::File::create(&path).unwrap(),
            pcap_synth::Format::Pcap,
            bytes,
        )
        .unwrap();
    path
}

/// 15.3: options that would multiply memory are bounded: one chunk per
/// record at most (32 bytes of bookkeeping per input byte before), and
/// absurd worker counts are usage errors, not aborts or panics.
#[test]
fn options_that_multiply_memory_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let big = synthetic(dir.path(), "big.pcap", 32 << 20);
    let b = big.to_str().unwrap();
    let whole = run(&["top", "-q", "--csv", "--limit", "0", b]);
    assert!(whole.status.success());
    // 32 MiB mapped, a few threads: 512 MiB of address space is plenty
    // for bookkeeping per chunk, and far short of 32 bytes per byte.
    for opt in [
        vec!["--bytes", "1"],
        vec!["--chunks", "18446744073709551615"],
        vec!["--packets", "1"],
    ] {
        let mut args = vec!["top", "-q", "--csv", "--limit", "0", "-j", "2"];
        args.extend(&opt);
        args.push(b);
        let out = run_limited(&args, 512 << 20, None);
        assert!(out.status.success(), "{opt:?}: {}", stderr(&out));
        assert_eq!(out.stdout, whole.stdout, "{opt:?}: the same counts");
    }
    for j in ["4294967296", "18446744073709551615", "10000000"] {
        let out = run(&["info", "-q", "-j", j, b]);
        assert_eq!(out.status.code(), Some(2), "-j {j}: {}", stderr(&out));
        assert!(stderr(&out).contains("at most"), "{}", stderr(&out));
    }
    let out = run(&["info", "-q", "-j", "1024", b]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// 15.4: `exec` keeps memory bounded however much the commands print, and
/// their output still comes in chunk order, whole.
#[test]
fn exec_output_is_spooled_not_held() {
    let dir = tempfile::tempdir().unwrap();
    let big = synthetic(dir.path(), "big.pcap", 8 << 20);
    // Each run prints its chunk number, 100 MiB of its own byte, and the
    // number again; 4 runs, 2 at a time: 400 MiB through a 256 MiB space.
    let script = "printf '<%s>' $PCAP_PARALLEL_CHUNK; \
                  head -c 100M /dev/zero | tr '\\0' $PCAP_PARALLEL_CHUNK; \
                  printf '<%s>' $PCAP_PARALLEL_CHUNK";
    use std::os::unix::process::CommandExt;
    let mut cmd = bin();
    cmd.args([
        "exec",
        "-q",
        big.to_str().unwrap(),
        "--chunks",
        "4",
        "-j",
        "2",
        "--",
        "sh",
        "-c",
        script,
    ])
    .env("MALLOC_ARENA_MAX", "1")
    .env("TMPDIR", dir.path())
    .stdout(Stdio::piped());
    // SAFETY: setrlimit only, in the child.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 256 << 20,
                rlim_max: 256 << 20,
            };
            libc::setrlimit(libc::RLIMIT_AS, &lim);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Read as it comes, checking the order, without holding it.
    let mut expect_chunk = 0u8;
    let mut state = 0; // 0: opening tag, 1: body, 2: closing tag
    let mut count = 0u64;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&buf[..n]);
        loop {
            let tag = format!("<{expect_chunk}>");
            match state {
                0 | 2 if pending.len() >= tag.len() => {
                    assert_eq!(&pending[..tag.len()], tag.as_bytes(), "chunk order");
                    pending.drain(..tag.len());
                    if state == 2 {
                        expect_chunk += 1;
                        count = 0;
                    }
                    state = if state == 0 { 1 } else { 0 };
                }
                1 if !pending.is_empty() => {
                    let take = pending.len().min((100 << 20) - count as usize);
                    assert!(pending[..take].iter().all(|&b| b == b'0' + expect_chunk));
                    pending.drain(..take);
                    count += take as u64;
                    if count == 100 << 20 {
                        state = 2;
                    }
                }
                _ => break,
            }
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(expect_chunk, 4, "every run's output, whole");
    // The spools were unnamed files: nothing is left in TMPDIR.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "big.pcap")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn sha(path: &Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

/// Every file in `dir` and its digest, sorted by name.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let digest = if e.file_type().unwrap().is_file() {
                sha(&e.path())
            } else {
                Vec::new()
            };
            (name, digest)
        })
        .collect();
    v.sort();
    v
}

/// 15.7: a split never deletes or overwrites its input, whatever it is
/// named and wherever it lies.
#[test]
fn split_never_replaces_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    std::fs::create_dir(&out).unwrap();
    for name in ["p-00000005.pcap", "p-00000000.pcap"] {
        let input = out.join(name);
        std::fs::copy(sample(), &input).unwrap();
        let before = snapshot(&out);
        let o = run(&[
            "split",
            "-q",
            input.to_str().unwrap(),
            "--prefix",
            "p",
            "-o",
            out.to_str().unwrap(),
            "--packets",
            "100",
            "--force",
        ]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("is named like a part"),
            "{}",
            stderr(&o)
        );
        assert_eq!(snapshot(&out), before, "{name}: nothing touched");
        std::fs::remove_file(&input).unwrap();
    }
    // A hard link to the input is the input too.
    let input = dir.path().join("in.pcap");
    std::fs::copy(sample(), &input).unwrap();
    std::fs::hard_link(&input, out.join("p-00000003.pcap")).unwrap();
    let o = run(&[
        "split",
        "-q",
        input.to_str().unwrap(),
        "--prefix",
        "p",
        "-o",
        out.to_str().unwrap(),
        "--packets",
        "100",
        "--force",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(sha(&input), sha(&sample()));
}

/// A directory where writes fail past `size` bytes: a small tmpfs where
/// mounting is allowed (root), else nothing (the caller then limits file
/// sizes with RLIMIT_FSIZE).
struct SmallDisk {
    path: PathBuf,
    mounted: bool,
}

impl SmallDisk {
    fn new(parent: &Path, size: &str) -> SmallDisk {
        let path = parent.join("disk");
        std::fs::create_dir_all(&path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        SmallDisk { path, mounted }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.path).status();
        }
    }
}

/// Runs a split whose writes fail past about `limit` bytes a file when
/// the disk is not a small tmpfs.
fn split_on(disk: &SmallDisk, args: &[&str], limit: u64) -> Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = bin();
    cmd.args(args);
    if !disk.mounted {
        // SAFETY: setrlimit and signal only, in the child.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
    }
    cmd.output().unwrap()
}

/// 15.8: a split that fails for want of space leaves the directory as it
/// was (not new parts 0-4 and old 5-7), and says so; a successful one
/// leaves exactly the new set.
#[test]
fn a_failed_split_leaves_the_directory_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let small = synthetic(dir.path(), "small.pcap", 1 << 20);
    let big = synthetic(dir.path(), "big.pcap", 16 << 20);
    let disk = SmallDisk::new(dir.path(), "4m");
    let d = disk.path.to_str().unwrap();
    let first = split_on(
        &disk,
        &[
            "split",
            "-q",
            small.to_str().unwrap(),
            "--prefix",
            "p",
            "-o",
            d,
            "--chunks",
            "8",
        ],
        4 << 20,
    );
    assert!(first.status.success(), "{}", stderr(&first));
    let before = snapshot(&disk.path);
    assert_eq!(before.len(), 8);
    for extra in [vec!["--chunks", "8"], vec!["--flows", "3"]] {
        let mut args = vec![
            "split",
            "-q",
            big.to_str().unwrap(),
            "--prefix",
            "p",
            "-o",
            d,
            "--force",
        ];
        args.extend(&extra);
        let o = split_on(&disk, &args, 1 << 20);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("no part written") && stderr(&o).contains("as it was"),
            "{}",
            stderr(&o)
        );
        assert_eq!(snapshot(&disk.path), before, "{extra:?}: as it was");
    }
    // With room, a re-split of fewer parts leaves exactly the new set.
    let o = split_on(
        &disk,
        &[
            "split",
            "-q",
            small.to_str().unwrap(),
            "--prefix",
            "p",
            "-o",
            d,
            "--chunks",
            "3",
            "--force",
        ],
        4 << 20,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let names: Vec<String> = snapshot(&disk.path).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["p-00000000.pcap", "p-00000001.pcap", "p-00000002.pcap"]
    );
}

/// 15.8: two splits with the same prefix at once: the second is refused
/// with a message naming the directory, and the first completes alone.
#[test]
fn concurrent_splits_of_one_prefix_do_not_mix() {
    let dir = tempfile::tempdir().unwrap();
    let big = synthetic(dir.path(), "big.pcap", 48 << 20);
    let other = synthetic(dir.path(), "other.pcap", 1 << 20);
    let out = dir.path().join("parts");
    let o = out.to_str().unwrap();
    let first = bin()
        .args([
            "split",
            "-q",
            big.to_str().unwrap(),
            "--prefix",
            "p",
            "-o",
            o,
            "--packets",
            "5000",
            "-j",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first to hold the lock.
    let lock = out.join(".p.pcap-parallel.lock");
    let start = std::time::Instant::now();
    while !lock.exists() && start.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let second = run(&[
        "split",
        "-q",
        other.to_str().unwrap(),
        "--prefix",
        "p",
        "-o",
        o,
        "--packets",
        "10",
        "--force",
    ]);
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("another split") && stderr(&second).contains(o),
        "{}",
        stderr(&second)
    );
    // Only the first split's parts, every one of them, and no lock or staging left.
    let parts: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let total = pcap_parallel::Capture::open(&big).unwrap().count().unwrap();
    assert_eq!(parts.len() as u64, total.div_ceil(5000), "{parts:?}");
    assert!(
        parts
            .iter()
            .all(|p| p.file_name().unwrap().to_string_lossy().starts_with("p-"))
    );
}

/// 15.2: a command that truncates the input while it is mapped: a clean
/// error naming the file (not SIGBUS, not "Bad address" blamed on a
/// command), exit 1, no temporary file left.
#[test]
fn an_input_truncated_during_exec_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = synthetic(dir.path(), "shrinks.pcap", 24 << 20);
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let i = input.to_str().unwrap();
    let truncate = format!("[ $PCAP_PARALLEL_CHUNK = 0 ] && truncate -s 100 {i}; cat > /dev/null");
    let with_file = format!("[ $PCAP_PARALLEL_CHUNK = 0 ] && truncate -s 100 {i}; wc -c < {{}}");
    for (what, script) in [("stdin", truncate), ("{}", with_file)] {
        pcap_synth::Synth::new(11)
            .write_bytes(
                std::fs::File::create(&input).unwrap(),
                pcap_synth::Format::Pcap,
                24 << 20,
            )
            .unwrap();
        let out = bin()
            .args([
                "exec",
                "-q",
                i,
                "--packets",
                "2000",
                "-j",
                "1",
                "--",
                "sh",
                "-c",
                &script,
            ])
            .env("TMPDIR", &tmp)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(i) && err.contains("changed during the run"),
            "{what}: {err}"
        );
        assert!(!err.contains("Bad address"), "{what}: {err}");
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            0,
            "{what}: temporary files"
        );
    }
}

/// 15.16: a full $TMPDIR is named as such, not blamed on the command.
#[test]
fn a_full_temporary_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::new(dir.path(), "64k");
    use std::os::unix::process::CommandExt;
    let mut cmd = bin();
    cmd.args([
        "exec",
        "-q",
        sample().to_str().unwrap(),
        "--chunks",
        "2",
        "--",
        "capinfos",
        "{}",
    ])
    .env("TMPDIR", &disk.path);
    if !disk.mounted {
        // SAFETY: setrlimit and signal only, in the child.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 4096,
                    rlim_max: 4096,
                };
                libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("temporary capture"), "{err}");
    assert!(!err.contains("could not run capinfos"), "{err}");
}

/// Packets' frame lengths as tshark reads a file (any compression it reads).
fn tshark_lengths(path: &Path) -> Vec<String> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args(["-T", "fields", "-e", "frame.len", "-e", "frame.time_epoch"])
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// The TLS secrets tshark finds in a file.
fn tshark_secrets(path: &Path) -> String {
    let keys = path.with_extension("keys");
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .arg("--export-tls-session-keys")
        .arg(&keys)
        .arg("-q")
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&keys).unwrap_or_default()
}

fn parts(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// 15.9: decryption secrets injected with editcap reach every part of a
/// split and every flow shard, as tshark sees them.
#[test]
fn decryption_secrets_reach_every_part() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    let secret = format!(
        "CLIENT_RANDOM {} {}",
        "00".repeat(31) + "01",
        "ab".repeat(48)
    );
    std::fs::write(&keys, format!("{secret}\n")).unwrap();
    let input = dir.path().join("secrets.pcapng");
    let s = Command::new("editcap")
        .args(["-F", "pcapng", "--inject-secrets"])
        .arg(format!("tls,{}", keys.display()))
        .arg(sample())
        .arg(&input)
        .status()
        .expect("editcap runs");
    assert!(s.success());
    assert!(tshark_secrets(&input).contains(&secret));
    for (what, opt) in [
        ("chunks", vec!["--chunks", "3"]),
        ("flows", vec!["--flows", "4"]),
        ("flows zstd", vec!["--flows", "3", "--compress", "zstd"]),
        ("stream", vec!["--packets", "300"]),
    ] {
        let out = dir.path().join(what.replace(' ', "-"));
        let mut args = vec!["split", "-q", "-o", out.to_str().unwrap()];
        args.extend(&opt);
        let stdin = what == "stream";
        args.push(if stdin { "-" } else { input.to_str().unwrap() });
        let mut cmd = bin();
        cmd.args(&args);
        if stdin {
            cmd.stdin(std::fs::File::open(&input).unwrap());
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{what}: {}", stderr(&o));
        let files = parts(&out);
        assert!(files.len() >= 3, "{what}: {files:?}");
        for f in &files {
            assert!(
                tshark_secrets(f).contains(&secret),
                "{what}: {}",
                f.display()
            );
        }
    }
}

/// 15.10: zstd flow shards read in tshark (Wireshark 4.0) exactly as the
/// plain shards do (it used to lose packets in files of many small frames).
#[test]
fn zstd_flow_shards_read_exactly_in_tshark() {
    let dir = tempfile::tempdir().unwrap();
    let input = synthetic(dir.path(), "in.pcap", 24 << 20);
    let (plain, zstd) = (dir.path().join("plain"), dir.path().join("zstd"));
    for (out, extra) in [(&plain, vec![]), (&zstd, vec!["--compress", "zstd"])] {
        let mut args = vec![
            "split",
            "-q",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--flows",
            "4",
        ];
        args.extend(extra);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let (p, z) = (parts(&plain), parts(&zstd));
    assert_eq!(p.len(), 4);
    for (a, b) in p.iter().zip(&z) {
        let want = tshark_lengths(a);
        assert!(want.len() > 10_000);
        assert_eq!(tshark_lengths(b), want, "{}", b.display());
    }
}

/// 15.11: a named pipe and process substitution (`/dev/fd/N`) are read
/// like standard input, not probed with pread ("Illegal seek").
#[test]
fn named_pipes_are_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let want = run(&["info", "--json", "-q", sample().to_str().unwrap()]);
    let want: serde_json::Value = serde_json::from_slice(&want.stdout).unwrap();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            w.write_all(&std::fs::read(sample()).unwrap()).unwrap();
        })
    };
    let out = run(&["info", "--json", "-q", fifo.to_str().unwrap()]);
    writer.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["packets"], want["packets"]);
    // Process substitution, as bash does it.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{} top -q --csv <(cat {})",
            env!("CARGO_BIN_EXE_pcap-parallel"),
            sample().display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let direct = run(&["top", "-q", "--csv", sample().to_str().unwrap()]);
    assert_eq!(out.stdout, direct.stdout);
}

/// 15.16: files whose size the kernel does not report (those of /proc)
/// are read, not called empty.
#[test]
fn files_without_a_reported_size_are_read() {
    // /proc/self/... is the reader's own: use a file of another process
    // that holds a capture: a pipe's end seen through /proc/PID/fd.
    let mut child = Command::new("cat")
        .arg(sample())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let fd = {
        use std::os::fd::AsRawFd;
        child.stdout.as_ref().unwrap().as_raw_fd()
    };
    let path = format!("/proc/{}/fd/{fd}", std::process::id());
    let out = run(&["info", "--json", "-q", &path]);
    child.wait().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["packets"], 1000);
    // A real /proc file that is not a capture: told as such, not "empty".
    let out = run(&["info", "-q", "/proc/self/status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a pcap"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("empty"), "{}", stderr(&out));
}

/// Sends `sig` to `child` once `ready` holds, and waits (at most 20 s).
fn signal_when(
    child: &mut std::process::Child,
    sig: i32,
    ready: impl Fn() -> bool,
) -> (std::process::ExitStatus, std::time::Duration) {
    let start = std::time::Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "never ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
    let signalled = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return (s, signalled.elapsed());
        }
        assert!(
            signalled.elapsed() < std::time::Duration::from_secs(20),
            "no hang"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// 15.12: SIGHUP (a closed terminal) is handled like SIGTERM: exec's
/// commands are stopped and its temporary files removed; split's staging
/// files too. And temporary files of a run that was killed outright are
/// removed by the next run.
#[test]
fn sighup_cleans_up_and_stale_files_of_killed_runs_go() {
    let dir = tempfile::tempdir().unwrap();
    let big = synthetic(dir.path(), "big.pcap", 24 << 20);
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let marker = dir.path().join("started");
    let script = format!("touch {}; sleep 30", marker.display());
    let mut child = bin()
        .args([
            "exec",
            "-q",
            big.to_str().unwrap(),
            "--packets",
            "5000",
            "-j",
            "2",
            "--",
            "sh",
            "-c",
            &script,
            "{}",
        ])
        .env("TMPDIR", &tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (status, took) = signal_when(&mut child, libc::SIGHUP, || marker.exists());
    assert_eq!(status.code(), Some(130));
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "temporary chunks removed"
    );

    // split: nothing but the earlier parts remains after SIGHUP.
    let out = dir.path().join("parts");
    let mut child = bin()
        .args([
            "split",
            "-q",
            big.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--packets",
            "500",
            "-j",
            "1",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (status, _) = signal_when(&mut child, libc::SIGHUP, || {
        std::fs::read_dir(&out).is_ok_and(|d| {
            d.flatten().any(|e| {
                e.file_type().is_ok_and(|t| t.is_dir())
                    && std::fs::read_dir(e.path()).is_ok_and(|mut s| s.next().is_some())
            })
        })
    });
    assert_eq!(status.code(), Some(130));
    assert!(
        !out.exists(),
        "no staging, no lock, no part, nor the directory the split made"
    );

    // A run killed outright (SIGKILL) leaves its temporary chunk: the next
    // run removes it, and leaves a live process's alone.
    let mut child = bin()
        .args([
            "exec",
            "-q",
            big.to_str().unwrap(),
            "--packets",
            "5000",
            "-j",
            "1",
            "--",
            "sh",
            "-c",
            "sleep 30",
            "{}",
        ])
        .env("TMPDIR", &tmp)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (status, _) = signal_when(&mut child, libc::SIGKILL, || {
        std::fs::read_dir(&tmp).is_ok_and(|mut d| d.next().is_some())
    });
    assert_eq!(status.code(), None);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 1, "left behind");
    let live = tmp.join(format!(
        "pcap-parallel-chunk-{}-keep.pcap",
        std::process::id()
    ));
    std::fs::write(&live, b"x").unwrap();
    let o = bin()
        .args(["exec", "-q", sample().to_str().unwrap(), "--", "true"])
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let left: Vec<PathBuf> = parts(&tmp);
    assert_eq!(
        left,
        vec![live],
        "the dead run's file removed, the live one's kept"
    );
}

/// 15.13: a SIGTERM during the compilation of a huge filter stops the
/// process at once (it ran 14 minutes through one).
#[test]
fn a_signal_during_filter_compilation_stops_the_process() {
    let hosts: Vec<String> = (0..3000)
        .map(|i| format!("host 10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255))
        .collect();
    let filter = hosts.join(" or ");
    let mut child = bin()
        .args([
            "info",
            "-q",
            "--filter",
            &filter,
            sample().to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let (status, took) = signal_when(&mut child, libc::SIGTERM, || {
        started.elapsed() > std::time::Duration::from_millis(500)
    });
    assert_eq!(status.code(), Some(130));
    assert!(took < std::time::Duration::from_secs(3), "{took:?}");
}

/// 15.16: part paths with newlines can be read back with --print0; a
/// directory named like a part is refused before any work; a read-only
/// output directory is named as such.
#[test]
fn split_outputs_are_named_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("two\nlines");
    let o = run(&[
        "split",
        "-q",
        "-0",
        sample().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--chunks",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names: Vec<&[u8]> = o
        .stdout
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .collect();
    assert_eq!(names.len(), 3);
    for n in names {
        assert!(Path::new(std::str::from_utf8(n).unwrap()).is_file());
    }

    let out = dir.path().join("d");
    std::fs::create_dir_all(out.join("sample-00000002.pcap")).unwrap();
    let o = run(&[
        "split",
        "-q",
        sample().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--chunks",
        "3",
        "--force",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is a directory"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);

    // Read-only (root ignores permissions: then this part does not apply).
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(ro.join("probe"), b"").is_err() {
        let o = run(&[
            "split",
            "-q",
            sample().to_str().unwrap(),
            "-o",
            ro.to_str().unwrap(),
            "--flows",
            "2",
        ]);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains(ro.to_str().unwrap()), "{}", stderr(&o));
        assert!(!stderr(&o).contains("sample-0000"), "{}", stderr(&o));
    }
}
