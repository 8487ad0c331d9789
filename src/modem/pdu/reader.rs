//! A cursor over PDU bytes whose every read checks the length first.

use super::PduError;

/// Reads a PDU front to back.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    /// The next byte.
    pub(super) fn byte(&mut self, field: &'static str) -> Result<u8, PduError> {
        Ok(self.take(1, field)?[0])
    }

    /// The next `n` bytes.
    pub(super) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], PduError> {
        let end = self
            .at
            .checked_add(n)
            .ok_or(PduError::Truncated { field })?;
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or(PduError::Truncated { field })?;
        self.at = end;
        Ok(slice)
    }

    /// Everything not read yet.
    pub(super) fn rest(&mut self) -> &'a [u8] {
        let rest = self.bytes.get(self.at..).unwrap_or_default();
        self.at = self.bytes.len();
        rest
    }
}
