//! Which bytes of an archive a request asks for: a `Range: bytes=…` header, or the query
//! form `?rangeFirst=A&rangeLast=B` that clients send because Sandstorm drops Range headers.
//! The header's syntax is read by `http-range-header`; this module only decides what a
//! range means for a file of a given size. The tests' and benchmarks' map-data servers read
//! `Range` through [`from_header`] too.

use std::ops::RangeInclusive;

use http_range_header::{EndPosition, StartPosition};

use crate::error::AppError;

#[derive(Debug, PartialEq, Eq)]
pub enum Wanted {
    Whole,
    Part(RangeInclusive<u64>),
    /// Starts past the end of a file of this size.
    Unsatisfiable,
}

/// The query form wins over the header. A malformed query form is the client's mistake
/// (400); a Range header this server does not understand is ignored, as HTTP allows.
pub fn wanted(
    range_first: Option<&str>,
    range_last: Option<&str>,
    header: Option<&str>,
    size: u64,
) -> Result<Wanted, AppError> {
    if range_first.is_some() || range_last.is_some() {
        let number = |v: Option<&str>, name: &str| -> Result<Option<u64>, AppError> {
            v.map(|s| {
                s.trim().parse::<u64>().map_err(|_| {
                    AppError::BadRequest(format!(
                        "\"{name}\" must be a byte offset (a whole number)."
                    ))
                })
            })
            .transpose()
        };
        let first = number(range_first, "rangeFirst")?.unwrap_or(0);
        let last = number(range_last, "rangeLast")?.unwrap_or(u64::MAX);
        if first > last {
            return Err(AppError::BadRequest(
                "\"rangeFirst\" must not be after \"rangeLast\".".into(),
            ));
        }
        return Ok(clamp(first, last, size));
    }
    Ok(header.map_or(Wanted::Whole, |h| from_header(h, size)))
}

/// What a `Range` header asks of a file of `size` bytes. One range of bytes is served; a
/// header that is malformed, reversed or asks for several ranges is ignored (the whole
/// file), as HTTP allows; a suffix longer than the file is the whole file.
pub fn from_header(header: &str, size: u64) -> Wanted {
    let Ok(parsed) = http_range_header::parse_range_header(header.trim()) else {
        return Wanted::Whole;
    };
    let [range] = parsed.ranges.as_slice() else {
        return Wanted::Whole;
    };
    let last = match range.end {
        EndPosition::Index(last) => last,
        EndPosition::LastByte => u64::MAX,
    };
    match range.start {
        StartPosition::Index(first) if first <= last => clamp(first, last, size),
        StartPosition::Index(_) => Wanted::Whole,
        StartPosition::FromLast(suffix) => clamp(size.saturating_sub(suffix), last, size),
    }
}

fn clamp(first: u64, last: u64, size: u64) -> Wanted {
    if first >= size {
        Wanted::Unsatisfiable
    } else {
        Wanted::Part(first..=last.min(size - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_forms() {
        assert_eq!(
            wanted(None, None, Some("bytes=0-9"), 100).unwrap(),
            Wanted::Part(0..=9)
        );
        assert_eq!(
            wanted(None, None, Some("bytes=90-"), 100).unwrap(),
            Wanted::Part(90..=99)
        );
        assert_eq!(
            wanted(None, None, Some("bytes=-10"), 100).unwrap(),
            Wanted::Part(90..=99)
        );
        assert_eq!(
            wanted(None, None, Some("bytes=50-500"), 100).unwrap(),
            Wanted::Part(50..=99)
        );
        assert_eq!(
            wanted(None, None, Some("bytes=100-"), 100).unwrap(),
            Wanted::Unsatisfiable
        );
        assert_eq!(
            wanted(None, None, Some("bytes=9-2"), 100).unwrap(),
            Wanted::Whole
        );
        assert_eq!(
            wanted(None, None, Some("items=0-1"), 100).unwrap(),
            Wanted::Whole
        );
        assert_eq!(
            wanted(None, None, Some("bytes=0-1,4-5"), 100).unwrap(),
            Wanted::Whole
        );
        assert_eq!(from_header("bytes=-500", 100), Wanted::Part(0..=99));
        assert_eq!(from_header("bytes=-5", 0), Wanted::Unsatisfiable);
        assert_eq!(from_header("bytes=x-5", 100), Wanted::Whole);
        assert_eq!(from_header("bytes=5", 100), Wanted::Whole);
    }

    #[test]
    fn query_forms() {
        assert_eq!(
            wanted(Some("0"), Some("9"), None, 100).unwrap(),
            Wanted::Part(0..=9)
        );
        assert_eq!(
            wanted(Some("0"), Some("9"), Some("bytes=5-6"), 100).unwrap(),
            Wanted::Part(0..=9)
        );
        assert_eq!(
            wanted(Some("100"), Some("200"), None, 100).unwrap(),
            Wanted::Unsatisfiable
        );
        assert!(wanted(Some("x"), Some("9"), None, 100).is_err());
        assert!(wanted(Some("9"), Some("1"), None, 100).is_err());
        assert!(wanted(Some("-1"), Some("1"), None, 100).is_err());
    }
}
