//! Which bytes of an archive a request asks for: a `Range: bytes=…` header, or the query
//! form `?rangeFirst=A&rangeLast=B` that clients send because Sandstorm drops Range headers.

use std::ops::RangeInclusive;

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
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(Wanted::Whole);
    };
    if spec.contains(',') {
        return Ok(Wanted::Whole);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(Wanted::Whole);
    };
    let (a, b) = (a.trim(), b.trim());
    Ok(match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(first), Ok(last)) if first <= last => clamp(first, last, size),
        (Ok(first), Err(_)) if b.is_empty() => clamp(first, u64::MAX, size),
        (Err(_), Ok(suffix)) if a.is_empty() && suffix > 0 => {
            if size == 0 {
                Wanted::Unsatisfiable
            } else {
                Wanted::Part(size.saturating_sub(suffix)..=size - 1)
            }
        }
        _ => Wanted::Whole,
    })
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
