//! The fuzz targets' checks, replayed on stable over every corpus file and
//! deterministic mutations of it (cargo-fuzz explores further on nightly;
//! see the README's development section).

mod common;
mod fuzz_checks;

use common::*;

/// Small deterministic mutations: truncations, flipped and overwritten bytes.
fn mutations(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![bytes.to_vec()];
    let n = bytes.len();
    if n == 0 {
        return out;
    }
    let mut seed = n as u64 | 1;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..6 {
        let cut = (next() as usize) % n;
        out.push(bytes[..cut].to_vec());
        let mut flipped = bytes.to_vec();
        for _ in 0..4 {
            let i = (next() as usize) % n;
            flipped[i] ^= 1 << (next() % 8);
        }
        out.push(flipped);
        let mut stamped = bytes.to_vec();
        let i = (next() as usize) % n;
        for b in stamped.iter_mut().skip(i).take(8) {
            *b = 0xff;
        }
        out.push(stamped);
    }
    out
}

#[test]
fn the_fuzz_checks_hold_on_the_corpus_and_its_mutations() {
    for e in manifest() {
        // Large files only in part: the checks are about structure, not size.
        let mut bytes = std::fs::read(&e.path).unwrap();
        bytes.truncate(64 << 10);
        for (i, m) in mutations(&bytes).into_iter().enumerate() {
            fuzz_checks::reader(&m);
            let mut params = vec![(i * 37) as u8, i as u8, i as u8];
            params.extend_from_slice(&m);
            fuzz_checks::chunker(&params);
            fuzz_checks::decode(&m[..m.len().min(200)]);
            let mut params = vec![(i * 53) as u8, (i * 11) as u8];
            params.extend_from_slice(&m);
            fuzz_checks::file_vs_stream(&params);
            let mut d = vec![i as u8];
            d.extend_from_slice(&m[..m.len().min(4096)]);
            fuzz_checks::decompress(&d);
        }
    }
}
