//! A capture file as one sequential reader of its decompressed bytes.
//!
//! For code that wants the bytes themselves (the original pcap-parallel's
//! `open_maybe_compressed`, or a reader of its own), whatever the
//! compression: told by magic bytes, as everywhere in this crate.
//!
//! ```
//! use std::io::Read;
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/sample.pcap");
//! let (compression, mut reader) = pcap_parallel::reader::open_decompressed(path)?;
//! assert_eq!(compression, pcap_parallel::Compression::None);
//! let mut magic = [0u8; 4];
//! reader.read_exact(&mut magic)?;
//! assert_eq!(magic, [0xd4, 0xc3, 0xb2, 0xa1]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::error::{Error, Result};
use crate::format::Compression;

/// Opens `path` and returns its compression and a reader of its
/// decompressed bytes (every gzip member, bzip2 and xz stream, zstd and lz4
/// frame). Errors while reading name no file: wrap them with the path.
pub fn open_decompressed(path: impl AsRef<Path>) -> Result<(Compression, Box<dyn Read + Send>)> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let mut file = File::open(path).map_err(|e| Error::io(&name, e))?;
    let mut head = Vec::with_capacity(Compression::MAGIC_LEN);
    (&mut file)
        .take(Compression::MAGIC_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(&name, e))?;
    let compression = Compression::detect(&head);
    let raw: Box<dyn Read + Send> = Box::new(BufReader::with_capacity(
        1 << 16,
        std::io::Cursor::new(head).chain(file),
    ));
    // The raw reader starts at compressed offset 0 (the head is chained back in).
    let reader = crate::decompress::decoder(raw, compression, &Default::default(), 0)
        .map_err(|e| Error::io(&name, e))?;
    Ok((compression, reader))
}
