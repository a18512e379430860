//! A walker over the protobuf wire format that allocates nothing: the way to
//! check counts and sizes in a remote message *before* decoding it.

/// What is wrong with the wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub &'static str);

/// One field: its number and, for length-delimited fields, its body.
pub type Field<'a> = (u64, Option<&'a [u8]>);

/// Iterates the fields of one protobuf message body. Varint, fixed32 and
/// fixed64 fields yield no body; groups (wire types 3 and 4) are rejected, as
/// no libp2p message uses them. After the first error the iterator ends.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    /// Walk `body`.
    pub fn new(body: &'a [u8]) -> Self {
        Fields { rest: body }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.rest.len() < n {
            return Err(WireError("truncated field"));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn next_field(&mut self) -> Result<Field<'a>, WireError> {
        let key = read_varint(&mut self.rest)?;
        let field = key >> 3;
        match key & 7 {
            0 => read_varint(&mut self.rest).map(|_| (field, None)),
            1 => self.take(8).map(|_| (field, None)),
            2 => {
                let len = usize::try_from(read_varint(&mut self.rest)?)
                    .map_err(|_| WireError("truncated field"))?;
                self.take(len).map(|body| (field, Some(body)))
            }
            5 => self.take(4).map(|_| (field, None)),
            _ => Err(WireError("unsupported wire type")),
        }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r = self.next_field();
        if r.is_err() {
            self.rest = &[];
        }
        Some(r)
    }
}

/// Read a base-128 varint of at most 10 bytes from the front of `bytes`.
pub fn read_varint(bytes: &mut &[u8]) -> Result<u64, WireError> {
    let mut value = 0u64;
    for i in 0..10 {
        let Some((&b, rest)) = bytes.split_first() else {
            return Err(WireError("truncated varint"));
        };
        *bytes = rest;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(WireError("overlong varint"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(b: &[u8]) -> Vec<Result<Field<'_>, WireError>> {
        Fields::new(b).collect()
    }

    #[test]
    fn walks_every_wire_type() {
        // field 1 varint 300, field 2 bytes "hi", field 3 fixed64, field 4 fixed32
        let msg = [
            0x08, 0xac, 0x02, 0x12, 2, b'h', b'i', 0x19, 0, 0, 0, 0, 0, 0, 0, 0, 0x25, 0, 0, 0, 0,
        ];
        let f: Vec<_> = all(&msg).into_iter().map(Result::unwrap).collect();
        assert_eq!(
            f,
            vec![(1, None), (2, Some(&b"hi"[..])), (3, None), (4, None)]
        );
    }

    #[test]
    fn rejects_broken_wire_and_stops() {
        assert_eq!(
            all(&[0x12, 5, b'a']),
            vec![Err(WireError("truncated field"))]
        );
        assert_eq!(all(&[0x08]), vec![Err(WireError("truncated varint"))]);
        assert_eq!(
            all(&[0x0b, 0x08, 1]),
            vec![Err(WireError("unsupported wire type"))]
        );
        assert_eq!(all(&[0xff; 11]), vec![Err(WireError("overlong varint"))]);
        assert_eq!(
            all(&[
                0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ])
            .len(),
            1
        );
        assert!(all(&[]).is_empty());
    }
}
