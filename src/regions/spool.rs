//! The region's search rows, set aside on disk while the download goes on.
//!
//! Importing takes the search index's one writer. Imported straight from the archive stream,
//! the import would hold that writer while the stream waits for parts still on the network,
//! and every other install or delete would wait on a stalled server. So the install copies
//! `pkg/search.csv` to `big_tmp/<region>/` as it unpacks (counting its rows, so that import
//! progress is in rows), and imports from that file once every part is in: the writer is only
//! ever held for local work.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use tokio_util::sync::CancellationToken;

/// Copies `csv` to `to` (made durable); returns the number of data rows (records after the
/// header). Records are counted as CSV reads them: a line break inside quotes is no new row.
pub fn spool(csv: &mut dyn Read, to: &Path) -> io::Result<u64> {
    let mut out = BufWriter::with_capacity(256 * 1024, File::create(to)?);
    let mut buf = vec![0u8; 256 * 1024];
    let mut counter = RecordCounter::default();
    loop {
        let n = match csv.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        counter.feed(&buf[..n]);
        out.write_all(&buf[..n])?;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(counter.records().saturating_sub(1))
}

/// Counts CSV records in a byte stream without parsing fields (so without holding any).
#[derive(Default)]
struct RecordCounter {
    quoted: bool,
    /// The current record has at least one byte.
    open: bool,
    complete: u64,
}

impl RecordCounter {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'"' => {
                    self.quoted = !self.quoted;
                    self.open = true;
                }
                b'\n' if !self.quoted => {
                    if self.open {
                        self.complete += 1;
                    }
                    self.open = false;
                }
                b'\r' if !self.quoted => {}
                _ => self.open = true,
            }
        }
    }

    fn records(&self) -> u64 {
        self.complete + u64::from(self.open)
    }
}

/// A reader that fails once `cancel` is cancelled, so that a long import from the spool
/// stops (and rolls back) at a delete or a shutdown.
pub struct Cancellable<R> {
    pub inner: R,
    pub cancel: CancellationToken,
}

impl<R: Read> Read for Cancellable<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(io::Error::other("the install was stopped"));
        }
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_counted_as_csv_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join("s.csv");
        let csv = "name,lat,lng\r\n\"Two\nlines\",1,2\r\n\"a \"\"quoted\"\" name\",3,4\n\nlast,5,6";
        assert_eq!(spool(&mut csv.as_bytes(), &to).unwrap(), 3);
        assert_eq!(std::fs::read_to_string(&to).unwrap(), csv);
        assert_eq!(spool(&mut "name,lat,lng\n".as_bytes(), &to).unwrap(), 0);
        assert_eq!(spool(&mut "".as_bytes(), &to).unwrap(), 0);
    }

    #[test]
    fn a_cancelled_reader_fails() {
        let cancel = CancellationToken::new();
        let mut r = Cancellable {
            inner: &b"abc"[..],
            cancel: cancel.clone(),
        };
        let mut buf = [0u8; 1];
        assert_eq!(r.read(&mut buf).unwrap(), 1);
        cancel.cancel();
        assert!(r.read(&mut buf).is_err());
    }
}
