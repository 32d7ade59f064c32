//! The Protocol Buffers wire format, as far as merging vector tiles needs it: reading a
//! message's fields in order without decoding it, and writing fields back.
//!
//! Written by hand because merging works on the bytes (a feature is copied as it is unless
//! its tags must be re-pointed), which prost's decode-everything model cannot do; see
//! `super::mvt`. Every read is checked: a field running past the end, an overlong varint or
//! a number too large for its field is an error, never a silent truncation.

/// One field of a message as read off the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// A fixed32 or fixed64 field: nothing in the vector tile schema uses them, so they are
    /// skipped.
    Fixed,
}

/// The fields of one message, in wire order.
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    pub fn new(message: &'a [u8]) -> Fields<'a> {
        Fields { rest: message }
    }

    /// The next field number and field, or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, Field<'a>)>, String> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let key = read_varint(&mut self.rest)?;
        let number =
            u32::try_from(key >> 3).map_err(|_| "bad vector tile: field number too large")?;
        let field = match key & 7 {
            0 => Field::Varint(read_varint(&mut self.rest)?),
            1 => {
                self.take(8)?;
                Field::Fixed
            }
            2 => {
                let len = read_varint(&mut self.rest)?;
                Field::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Field::Fixed
            }
            other => return Err(format!("bad vector tile: wire type {other}")),
        };
        Ok(Some((number, field)))
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], String> {
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= self.rest.len())
            .ok_or("bad vector tile: a field runs past the end")?;
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }
}

/// Reads one varint off the front of `buf`.
pub fn read_varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for (i, byte) in buf.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Ok(value);
        }
    }
    Err("bad vector tile: truncated or overlong varint".into())
}

/// A uint32 value read as a varint: larger values are an error, not cut to 32 bits.
pub fn u32_value(v: u64) -> Result<u32, String> {
    u32::try_from(v).map_err(|_| format!("bad vector tile: {v} does not fit a uint32 field"))
}

/// Appends the values of a repeated uint32 field, which writers may send packed or one value
/// per field.
pub fn push_u32s(field: Field, out: &mut Vec<u32>) -> Result<(), String> {
    match field {
        Field::Varint(v) => out.push(u32_value(v)?),
        Field::Bytes(mut packed) => {
            while !packed.is_empty() {
                out.push(u32_value(read_varint(&mut packed)?)?);
            }
        }
        Field::Fixed => return Err("bad vector tile: a fixed-width number list".into()),
    }
    Ok(())
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_varint_field(out: &mut Vec<u8>, number: u32, v: u64) {
    put_varint(out, u64::from(number) << 3);
    put_varint(out, v);
}

pub fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_varint(out, (u64::from(number) << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Writes `values` as one packed repeated field, using `scratch` for the packed bytes.
pub fn put_packed(out: &mut Vec<u8>, number: u32, values: &[u32], scratch: &mut Vec<u8>) {
    scratch.clear();
    for v in values {
        put_varint(scratch, u64::from(*v));
    }
    put_bytes(out, number, scratch);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_bad_ones_are_errors() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut read: &[u8] = &out;
            assert_eq!(read_varint(&mut read).unwrap(), v);
            assert!(read.is_empty());
        }
        assert!(read_varint(&mut &[0x80u8, 0x80][..]).is_err());
        assert!(read_varint(&mut &[0xffu8; 11][..]).is_err());
    }

    #[test]
    fn a_number_too_large_for_a_uint32_field_is_an_error_not_cut_short() {
        let big = u64::from(u32::MAX) + 1;
        let mut out = Vec::new();
        assert!(push_u32s(Field::Varint(big), &mut out).is_err());
        let mut packed = Vec::new();
        put_varint(&mut packed, 7);
        put_varint(&mut packed, big);
        assert!(push_u32s(Field::Bytes(&packed), &mut out).is_err());
        out.clear();
        push_u32s(Field::Varint(u64::from(u32::MAX)), &mut out).unwrap();
        assert_eq!(out, vec![u32::MAX]);
    }

    #[test]
    fn fields_are_read_in_order_and_a_short_message_is_an_error() {
        let mut message = Vec::new();
        put_varint_field(&mut message, 15, 2);
        put_bytes(&mut message, 1, b"roads");
        put_packed(&mut message, 4, &[9, 50, 34], &mut Vec::new());
        let mut fields = Fields::new(&message);
        assert_eq!(fields.next_field().unwrap(), Some((15, Field::Varint(2))));
        assert_eq!(
            fields.next_field().unwrap(),
            Some((1, Field::Bytes(b"roads")))
        );
        let Some((4, Field::Bytes(packed))) = fields.next_field().unwrap() else {
            panic!("packed field");
        };
        assert_eq!(packed, [9, 50, 34]);
        assert_eq!(fields.next_field().unwrap(), None);
        let mut short = Fields::new(&message[..message.len() - 1]);
        let results: Vec<_> = std::iter::from_fn(|| short.next_field().transpose()).collect();
        assert!(results.last().unwrap().is_err());
    }
}
