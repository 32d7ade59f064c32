//! Bounds on what unpacking a region's package may expand to and hold in memory.
//!
//! A package is hostile until installed: a 1 MiB download may expand to a gigabyte of tiles
//! (a gzip bomb), or hold a search CSV whose one field, or one unclosed quote, runs for a
//! gigabyte, which the CSV reader would hold whole. The readers here sit in the install's
//! stream and stop it with an error past a bound:
//! - [`Expansion`]: the unpacked bytes stay within a multiple of the compressed bytes read
//!   (plus a start allowance) and an absolute ceiling, and the disk keeps [`disk::KEEP_FREE`]
//!   free as they are written;
//! - [`CsvBounds`]: every field and record of the search CSV stays within a length.
//!
//! The readers above (gzip, tar, the CSV import) turn an error into their own; the bound
//! crossed is kept in a [`Tripped`], so the install reports it as it is.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::disk;
use super::download::Stop;

/// Unpacked bytes allowed per compressed byte read. Real packages expand about 1.5 times
/// (tiles are already gzip'd; the search CSV compresses 3–5 times); gzip can reach 1,000.
const MAX_RATIO: u64 = 20;
/// Unpacked bytes allowed before the ratio applies (a package's first bytes may be all
/// highly compressible header and CSV).
const START_ALLOWANCE: u64 = 16 * 1024 * 1024;
/// No region unpacks to more than this, whatever its download.
const MAX_UNPACKED: u64 = 64 * 1024 * 1024 * 1024;
/// How often, in unpacked bytes, the free disk space is asked.
const ROOM_CHECK_EVERY: u64 = 1024 * 1024;
/// Longest field of the search CSV; place names are short, aliases a few hundred bytes.
pub const MAX_CSV_FIELD: usize = 64 * 1024;
/// Longest record of the search CSV, its fields together.
pub const MAX_CSV_RECORD: usize = 128 * 1024;

/// The first bound an install crossed, if any.
#[derive(Clone, Default)]
pub struct Tripped(Arc<Mutex<Option<Stop>>>);

impl Tripped {
    /// Records `stop` (the first one wins) and gives the error that ends the stream.
    fn trip(&self, stop: Stop) -> io::Error {
        let message = match &stop {
            Stop::Failed(m) | Stop::NoRoom(m) | Stop::Refused(m) => m.clone(),
            Stop::Access { message, .. } => message.clone(),
            Stop::Cancelled => "cancelled".into(),
        };
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(stop);
        io::Error::other(message)
    }

    pub fn take(&self) -> Option<Stop> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Counts the compressed bytes read, for [`Expansion`].
pub struct Compressed<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R> Compressed<R> {
    pub fn new(inner: R) -> (Compressed<R>, Arc<AtomicU64>) {
        let read = Arc::new(AtomicU64::new(0));
        let counted = Compressed {
            inner,
            read: read.clone(),
        };
        (counted, read)
    }
}

impl<R: Read> Read for Compressed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Reads the unpacked stream, stopping it past the bounds in the module comment.
pub struct Expansion<R> {
    inner: R,
    compressed: Arc<AtomicU64>,
    unpacked: u64,
    next_room_check: u64,
    disk_root: PathBuf,
    tripped: Tripped,
}

impl<R> Expansion<R> {
    pub fn new(
        inner: R,
        compressed: Arc<AtomicU64>,
        disk_root: PathBuf,
        tripped: Tripped,
    ) -> Expansion<R> {
        Expansion {
            inner,
            compressed,
            unpacked: 0,
            next_room_check: 0,
            disk_root,
            tripped,
        }
    }

    fn check(&mut self) -> io::Result<()> {
        let allowed = self
            .compressed
            .load(Ordering::Relaxed)
            .saturating_mul(MAX_RATIO)
            .saturating_add(START_ALLOWANCE);
        if self.unpacked > allowed {
            return Err(self.tripped.trip(Stop::Refused(format!(
                "the region's package unpacks to more than {MAX_RATIO} times its download, which no real region does, so it was not installed"
            ))));
        }
        if self.unpacked > MAX_UNPACKED {
            return Err(self.tripped.trip(Stop::Refused(format!(
                "the region's package unpacks to more than {} GB, more than any region, so it was not installed",
                MAX_UNPACKED / 1_000_000_000
            ))));
        }
        if self.unpacked >= self.next_room_check {
            self.next_room_check = self.unpacked + ROOM_CHECK_EVERY;
            if disk::free_bytes(&self.disk_root).is_some_and(|free| free < disk::KEEP_FREE) {
                return Err(self.tripped.trip(Stop::NoRoom(
                    "not enough disk space: unpacking this region would leave the grain's disk nearly full; delete a region to make room".into(),
                )));
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Expansion<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.unpacked += n as u64;
        self.check()?;
        Ok(n)
    }
}

/// Passes the search CSV through unchanged, failing once a field or a record is longer than
/// allowed. It parses the bytes with `csv_core`, the parser the `csv` crate reading them
/// next is built on, so quotes are understood the same way; `csv_core` writes a field into
/// a fixed buffer and says when it is full, which is the field bound.
pub struct CsvBounds<R> {
    inner: R,
    parser: csv_core::Reader,
    field: Box<[u8]>,
    field_len: usize,
    record_len: usize,
    tripped: Tripped,
}

impl<R> CsvBounds<R> {
    pub fn new(inner: R, tripped: Tripped) -> CsvBounds<R> {
        CsvBounds {
            inner,
            parser: csv_core::Reader::new(),
            field: vec![0; MAX_CSV_FIELD].into_boxed_slice(),
            field_len: 0,
            record_len: 0,
            tripped,
        }
    }

    fn refuse(&self, what: &str) -> io::Error {
        self.tripped.trip(Stop::Refused(format!(
            "the region's search data has a {what}, maybe an unclosed quote, so it was not installed"
        )))
    }
}

impl<R: Read> Read for CsvBounds<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        // An empty input tells csv_core the file ended; nothing more to bound then.
        let mut input = &buf[..n];
        while !input.is_empty() {
            let (result, read, written) = self
                .parser
                .read_field(input, &mut self.field[self.field_len..]);
            input = &input[read..];
            self.field_len += written;
            match result {
                csv_core::ReadFieldResult::InputEmpty | csv_core::ReadFieldResult::End => break,
                csv_core::ReadFieldResult::OutputFull => {
                    return Err(
                        self.refuse(&format!("field longer than {} KiB", MAX_CSV_FIELD / 1024))
                    );
                }
                csv_core::ReadFieldResult::Field { record_end } => {
                    self.record_len += self.field_len;
                    self.field_len = 0;
                    if self.record_len > MAX_CSV_RECORD {
                        return Err(
                            self.refuse(&format!("row longer than {} KiB", MAX_CSV_RECORD / 1024))
                        );
                    }
                    if record_end {
                        self.record_len = 0;
                    }
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through_bounds(csv: &[u8], chunk: usize) -> (io::Result<Vec<u8>>, Option<Stop>) {
        let tripped = Tripped::default();
        let mut bounded = CsvBounds::new(csv, tripped.clone());
        let mut out = Vec::new();
        let mut buf = vec![0; chunk];
        let result = loop {
            match bounded.read(&mut buf) {
                Ok(0) => break Ok(out),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => break Err(e),
            }
        };
        (result, tripped.take())
    }

    #[test]
    fn csv_within_bounds_passes_unchanged_whatever_the_chunks() {
        let mut csv = b"name,lat,lng\n\"Quoted, \"\"name\"\"\",1,2\n".to_vec();
        csv.extend(
            b"\""
                .iter()
                .chain(&vec![b'x'; MAX_CSV_FIELD - 1])
                .chain(b"\",1,2\n"),
        );
        for chunk in [1, 7, 4096] {
            let (out, tripped) = through_bounds(&csv, chunk);
            assert_eq!(out.unwrap(), csv);
            assert!(tripped.is_none());
        }
    }

    #[test]
    fn a_long_field_an_unclosed_quote_or_a_long_row_is_refused() {
        let long_field = [
            b"name,lat,lng\nA,".as_slice(),
            &vec![b'1'; MAX_CSV_FIELD + 1],
        ]
        .concat();
        let unclosed = [
            b"name,lat,lng\n\"A,1,2\n".as_slice(),
            &b"B,1,2\n".repeat(MAX_CSV_FIELD / 6),
        ]
        .concat();
        let long_row = format!("{},1\n", vec!["y".repeat(1000); 200].join(",")).into_bytes();
        for (csv, what) in [
            (long_field, "field longer"),
            (unclosed, "field longer"),
            (long_row, "row longer"),
        ] {
            let (out, tripped) = through_bounds(&csv, 4096);
            assert!(out.is_err());
            let Some(Stop::Refused(message)) = tripped else {
                panic!("not refused");
            };
            assert!(message.contains(what), "{message}");
        }
    }

    #[test]
    fn a_bomb_is_stopped_past_its_ratio() {
        let zeros = io::repeat(0).take(64 << 20);
        let mut gz = Vec::new();
        flate2::read::GzEncoder::new(zeros, flate2::Compression::fast())
            .read_to_end(&mut gz)
            .unwrap();
        let (counted, read) = Compressed::new(gz.as_slice());
        let tripped = Tripped::default();
        let dir = tempfile::tempdir().unwrap();
        let mut unpacked = Expansion::new(
            flate2::read::GzDecoder::new(counted),
            read,
            dir.path().to_path_buf(),
            tripped.clone(),
        );
        let copied = io::copy(&mut unpacked, &mut io::sink());
        assert!(copied.is_err());
        assert!(matches!(tripped.take(), Some(Stop::Refused(m)) if m.contains("20 times")));
    }
}
