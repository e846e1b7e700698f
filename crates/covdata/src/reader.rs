//! A bounds-checked little cursor over a byte slice: every read either
//! succeeds or reports where the data ran out, so no input can panic.

use crate::error::{Corruption, CorruptionKind};

#[derive(Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// File offset of `buf[0]`, so errors report positions in the file.
    base: u64,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], base: u64) -> Self {
        Reader { buf, pos: 0, base }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The absolute file offset of the cursor.
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub(crate) fn err(&self, kind: CorruptionKind) -> Corruption {
        Corruption::new(self.offset(), kind)
    }

    pub(crate) fn seek(&mut self, pos: usize, what: &'static str) -> Result<(), Corruption> {
        if pos > self.buf.len() {
            return Err(self.err(CorruptionKind::OutOfRange {
                what,
                value: pos as u64,
                limit: self.buf.len() as u64,
            }));
        }
        self.pos = pos;
        Ok(())
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Corruption> {
        match self.buf.get(self.pos..self.pos.saturating_add(n)) {
            Some(s) if self.pos.checked_add(n).is_some() => {
                self.pos += n;
                Ok(s)
            }
            _ => Err(self.err(CorruptionKind::Truncated(what))),
        }
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Corruption> {
        Ok(self.bytes(1, what)?[0])
    }

    pub(crate) fn u32_le(&mut self, what: &'static str) -> Result<u32, Corruption> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u32_be(&mut self, what: &'static str) -> Result<u32, Corruption> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64_le(&mut self, what: &'static str) -> Result<u64, Corruption> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn array16(&mut self, what: &'static str) -> Result<[u8; 16], Corruption> {
        let b = self.bytes(16, what)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Ok(a)
    }

    /// An unsigned LEB128 value. Like Go's reader, bits beyond the 64th are
    /// dropped rather than rejected, so over-long encodings read the same.
    #[inline(always)]
    pub(crate) fn uleb(&mut self, what: &'static str) -> Result<u64, Corruption> {
        // Most values (line and column numbers, counts) fit in one or two
        // bytes.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
            if let Some(&c) = self.buf.get(self.pos + 1)
                && c < 0x80
            {
                self.pos += 2;
                return Ok(u64::from(b & 0x7f) | u64::from(c) << 7);
            }
        }
        self.uleb_long(what)
    }

    #[inline(never)]
    fn uleb_long(&mut self, what: &'static str) -> Result<u64, Corruption> {
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err(CorruptionKind::Truncated(what)));
            };
            self.pos += 1;
            if shift < 64 {
                value |= u64::from(b & 0x7f) << shift;
            }
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    /// Five ULEB128 values (a block's position and statement count) when
    /// each takes at most three bytes and 15 bytes remain: the common case,
    /// without a bounds check per byte. `None` leaves the cursor as it was
    /// (read them one by one then).
    #[inline(always)]
    pub(crate) fn uleb32x5(&mut self) -> Option<[u32; 5]> {
        let b: &[u8; 15] = self.buf.get(self.pos..self.pos + 15)?.try_into().ok()?;
        let mut out = [0u32; 5];
        let mut p = 0;
        for o in &mut out {
            let (x, y, z) = (b[p], b[p + 1], b[p + 2]);
            if x < 0x80 {
                *o = u32::from(x);
                p += 1;
            } else if y < 0x80 {
                *o = u32::from(x & 0x7f) | u32::from(y) << 7;
                p += 2;
            } else if z < 0x80 {
                *o = u32::from(x & 0x7f) | u32::from(y & 0x7f) << 7 | u32::from(z) << 14;
                p += 3;
            } else {
                return None;
            }
        }
        self.pos += p;
        Some(out)
    }

    /// A ULEB128 value truncated to 32 bits, as Go's decoders do.
    #[inline(always)]
    pub(crate) fn uleb32(&mut self, what: &'static str) -> Result<u32, Corruption> {
        self.uleb(what).map(|v| v as u32)
    }
}

/// A decoded string table: ULEB count, then per entry ULEB length + bytes.
/// Entries stay slices of the input; names are converted when needed.
pub(crate) struct StringTable<'a> {
    pub(crate) entries: Vec<&'a [u8]>,
    /// Offset of the table in the file, for error messages.
    pub(crate) offset: u64,
}

impl<'a> StringTable<'a> {
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, Corruption> {
        let offset = r.offset();
        let count = r.uleb("string table")?;
        // Every entry takes at least one byte, so a count beyond the
        // remaining bytes is damage, not a reason to allocate.
        let remaining = (r.buf.len() - r.pos) as u64;
        if count > remaining {
            return Err(r.err(CorruptionKind::OutOfRange {
                what: "string table entry count",
                value: count,
                limit: remaining,
            }));
        }
        let mut entries = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let len = r.uleb("string table")?;
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            entries.push(r.bytes(len, "string table")?);
        }
        Ok(StringTable { entries, offset })
    }

    pub(crate) fn get(&self, index: u64) -> Result<&'a [u8], Corruption> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.entries.get(i).copied())
            .ok_or(Corruption::new(
                self.offset,
                CorruptionKind::BadStringIndex {
                    index,
                    entries: self.entries.len(),
                },
            ))
    }
}

/// Go strings are bytes; names in valid data are UTF-8, anything else is
/// shown with replacement characters rather than rejected.
pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl<'a> Reader<'a> {
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The whole underlying buffer (for hot loops that track `pos` locally).
    pub(crate) fn buffer(&self) -> &'a [u8] {
        self.buf
    }

    /// Move the cursor; callers guarantee `pos <= buffer().len()`.
    pub(crate) fn set_pos(&mut self, pos: usize) {
        debug_assert!(pos <= self.buf.len());
        self.pos = pos.min(self.buf.len());
    }
}
