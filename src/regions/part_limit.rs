//! How far one downloaded part may grow. What a map-data server sends is hostile until
//! verified: a part the region list declares as 1,000 bytes may come as an endless stream.
//! A part stops at its declared size exactly, or, when the region list gives no sizes, at a
//! ceiling; past it the region fails with a sentence and the oversized part is removed.

use super::download::Stop;

/// The most a part may hold when the region list gives no sizes (`region pack` makes
/// 2 MiB parts; the public server's are far smaller than this).
const MAX_PART_BYTES: u64 = 1 << 30;
/// Sets that ceiling in bytes (tests make it small).
pub const MAX_PART_BYTES_ENV: &str = "DESERT_ATLAS_MAX_PART_BYTES";

#[derive(Debug, Clone, Copy)]
pub struct PartLimit {
    /// Part number as a person counts (from 1).
    number: usize,
    most: u64,
    declared: bool,
}

impl PartLimit {
    /// The limit of part `index` (from 0), whose declared size is `declared` if any.
    pub fn new(index: usize, declared: Option<u64>) -> PartLimit {
        let ceiling = std::env::var(MAX_PART_BYTES_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(MAX_PART_BYTES);
        PartLimit {
            number: index + 1,
            most: declared.unwrap_or(ceiling),
            declared: declared.is_some(),
        }
    }

    /// Whether a part already `have` bytes long may take `more`; the region's failure if not.
    pub fn check(&self, have: u64, more: u64) -> Result<(), Stop> {
        if have.saturating_add(more) <= self.most {
            return Ok(());
        }
        Err(Stop::Refused(if self.declared {
            format!(
                "the map server sent more than the {} bytes the region list gives for part {}, so the region was not installed; try again later",
                self.most, self.number
            )
        } else {
            format!(
                "part {} grew past {} MB, the most a part may be, so the region was not installed; the map server may be faulty",
                self.number,
                self.most / 1_000_000
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_size_is_the_limit_to_the_byte() {
        let limit = PartLimit::new(0, Some(1000));
        assert!(limit.check(0, 1000).is_ok());
        assert!(limit.check(999, 1).is_ok());
        let Err(Stop::Refused(message)) = limit.check(1000, 1) else {
            panic!("one byte too many was taken");
        };
        assert!(message.contains("1000 bytes"), "{message}");
        assert!(message.contains("part 1"), "{message}");
    }

    #[test]
    fn without_a_declared_size_the_ceiling_applies() {
        let limit = PartLimit::new(2, None);
        assert!(limit.check(MAX_PART_BYTES - 1, 1).is_ok());
        assert!(limit.check(MAX_PART_BYTES, 1).is_err());
        assert!(limit.check(u64::MAX, u64::MAX).is_err());
    }
}
