//! The xz layer of an spk: compressed with LZMA2 at preset 9 (extreme) — or preset 0 for a
//! package made only to be unpacked again by a test — with a dictionary no
//! bigger than the data needs (the same ratio as the full 64 MiB one, with less memory on both
//! sides); read back with a memory ceiling so that a hostile package cannot ask for gigabytes.

use std::io::{BufRead, Read};

use xz2::bufread::XzDecoder;
use xz2::stream::{Check, Filters, LzmaOptions, Stream};

use crate::error::{Error, Result};

/// liblzma's `LZMA_PRESET_EXTREME` flag (xz2 does not re-export it).
const PRESET_EXTREME: u32 = 1 << 31;

/// What decompressing may use at most (preset 9's 64 MiB dictionary needs about 65 MiB).
const DECODER_MEMORY: u64 = 256 << 20;

/// How hard to compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    /// Preset 9, extreme: the package that is shipped.
    Smallest,
    /// Preset 0: seconds instead of minutes, for packages that tests unpack again.
    Fastest,
}

/// `data` (`size` bytes) as one xz stream.
pub fn compress(data: impl Read, size: u64, effort: Effort) -> Result<Vec<u8>> {
    let failed = |e: xz2::stream::Error| Error::invalid(format!("xz compression failed: {e}"));
    let preset = match effort {
        Effort::Smallest => 9 | PRESET_EXTREME,
        Effort::Fastest => 0,
    };
    let mut options = LzmaOptions::new_preset(preset).map_err(failed)?;
    let dictionary = size.next_power_of_two().clamp(1 << 20, 64 << 20);
    options.dict_size(dictionary as u32);
    let mut filters = Filters::new();
    filters.lzma2(&options);
    let stream = Stream::new_stream_encoder(&filters, Check::Crc64).map_err(failed)?;
    let mut encoder = xz2::read::XzEncoder::new_stream(data, stream);
    let mut out = Vec::with_capacity((size / 3) as usize);
    encoder
        .read_to_end(&mut out)
        .map_err(|e| Error::invalid(format!("xz compression failed: {e}")))?;
    Ok(out)
}

/// A reader of the one xz stream in `input`; reading fails on corrupt, truncated or trailing data.
pub fn decoder<R: BufRead>(input: R) -> Result<XzDecoder<R>> {
    let stream = Stream::new_stream_decoder(DECODER_MEMORY, 0)
        .map_err(|e| Error::invalid(format!("xz decoder: {e}")))?;
    Ok(XzDecoder::new_stream(input, stream))
}
