//! An event's payloads (prompt, completion, params, returns and attributes) packed for storage
//! in one compressed value, and read back from it.
//!
//! Payloads are most of what is stored (a chat span's messages are kilobytes; its other
//! columns, tens of bytes), and the list and statistics never read them. So they are packed
//! before they reach the writer, on the request's thread ([`crate::store::Write::pack`]): the
//! five values as one JSON array, `[prompt, completion, params, returns, attributes]` (absent
//! ones `null`), compressed with zstd. The writer only binds the bytes.
//!
//! The format: one byte naming it ([`ZSTD_JSON_ARRAY`]), the length of the JSON text (4 bytes,
//! little-endian), then the zstd frame.

use std::cell::RefCell;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// The format byte of a zstd-compressed JSON array.
const ZSTD_JSON_ARRAY: u8 = 1;

/// zstd's level: 1 compresses realistic prompts about as well as 3 here, at twice the speed.
const LEVEL: i32 = 1;

/// The most a packed payload may unpack to (the largest request body is 16 MiB by default).
const MAX_UNPACKED: usize = 256 << 20;

/// An event's payloads as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedPayloads(Vec<u8>);

/// Payloads read back: the stored JSON texts, unparsed.
#[derive(Debug)]
pub(crate) struct Payloads {
    pub prompt: Option<Box<RawValue>>,
    pub completion: Option<Box<RawValue>>,
    pub params: Option<Box<RawValue>>,
    pub returns: Option<Box<RawValue>>,
    pub attributes: Box<RawValue>,
}

/// Why stored bytes are not packed payloads.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The first byte names no known format.
    #[error("unknown payload format {0}")]
    Format(u8),
    /// Too short, or its length is out of range.
    #[error("truncated or oversized payload")]
    Length,
    /// The compressed frame does not decompress.
    #[error("payload does not decompress: {0}")]
    Zstd(#[from] std::io::Error),
    /// The decompressed text is not the JSON array it should be.
    #[error("payload is not a JSON array of five values: {0}")]
    Json(#[from] serde_json::Error),
}

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

impl PackedPayloads {
    /// Packs the payloads (`null` ones are stored as absent).
    pub fn pack(
        prompt: Option<&Value>,
        completion: Option<&Value>,
        params: Option<&Value>,
        returns: Option<&Value>,
        attributes: &Value,
    ) -> Self {
        fn present(v: Option<&Value>) -> Option<&Value> {
            v.filter(|v| !v.is_null())
        }
        let array = (
            present(prompt),
            present(completion),
            present(params),
            present(returns),
            attributes,
        );
        // Serialising a `Value` cannot fail.
        Self::compress(serde_json::to_vec(&array).unwrap_or_else(|_| b"[]".to_vec()))
    }

    /// Packs payloads held as stored JSON text (rows written before packing), keeping their
    /// text as it is (`null` ones are stored as absent).
    pub(crate) fn pack_raw(
        prompt: Option<&RawValue>,
        completion: Option<&RawValue>,
        params: Option<&RawValue>,
        returns: Option<&RawValue>,
        attributes: &RawValue,
    ) -> Self {
        fn present(v: Option<&RawValue>) -> Option<&RawValue> {
            v.filter(|v| v.get() != "null")
        }
        let array = (
            present(prompt),
            present(completion),
            present(params),
            present(returns),
            attributes,
        );
        Self::compress(serde_json::to_vec(&array).unwrap_or_else(|_| b"[]".to_vec()))
    }

    /// The JSON array `text`, compressed.
    fn compress(text: Vec<u8>) -> Self {
        let mut packed = Vec::with_capacity(5 + text.len() / 2);
        packed.push(ZSTD_JSON_ARRAY);
        packed.extend_from_slice(&(text.len() as u32).to_le_bytes());
        let frame = COMPRESSOR.with(|cell| {
            let mut cell = cell.borrow_mut();
            let compressor = match cell.as_mut() {
                Some(compressor) => compressor,
                None => cell.insert(zstd::bulk::Compressor::new(LEVEL)?),
            };
            compressor.compress(&text)
        });
        match frame {
            Ok(frame) => packed.extend_from_slice(&frame),
            // zstd fails only when out of memory: the text is stored as it is then.
            Err(_) => {
                packed.clear();
                packed.push(RAW_JSON_ARRAY);
                packed.extend_from_slice(&text);
            }
        }
        Self(packed)
    }

    /// The stored bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Their length.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes (never, for packed payloads).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The format byte of an uncompressed JSON array (written only if zstd fails).
const RAW_JSON_ARRAY: u8 = 0;

/// Stored bytes back into the payloads' JSON texts.
pub(crate) fn unpack(bytes: &[u8]) -> Result<Payloads, UnpackError> {
    let (&format, rest) = bytes.split_first().ok_or(UnpackError::Length)?;
    let text = match format {
        RAW_JSON_ARRAY => rest.to_vec(),
        ZSTD_JSON_ARRAY => {
            let (len, frame) = rest.split_at_checked(4).ok_or(UnpackError::Length)?;
            let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            if len > MAX_UNPACKED {
                return Err(UnpackError::Length);
            }
            DECOMPRESSOR.with(|cell| {
                let mut cell = cell.borrow_mut();
                let decompressor = match cell.as_mut() {
                    Some(decompressor) => decompressor,
                    None => cell.insert(zstd::bulk::Decompressor::new()?),
                };
                decompressor.decompress(frame, len)
            })?
        }
        other => return Err(UnpackError::Format(other)),
    };
    #[derive(Deserialize)]
    struct Array(
        Option<Box<RawValue>>,
        Option<Box<RawValue>>,
        Option<Box<RawValue>>,
        Option<Box<RawValue>>,
        Box<RawValue>,
    );
    let Array(prompt, completion, params, returns, attributes) = serde_json::from_slice(&text)?;
    Ok(Payloads {
        prompt,
        completion,
        params,
        returns,
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_read_back_as_written_and_smaller() {
        let prompt = json!([{"role": "user", "content": "plan a trip to Kyoto ".repeat(40)}]);
        let attributes = json!({"gen_ai.system": "openai", "n": 1});
        let packed = PackedPayloads::pack(
            Some(&prompt),
            Some(&json!("ok")),
            Some(&Value::Null),
            None,
            &attributes,
        );
        assert!(
            packed.len() < prompt.to_string().len() / 4,
            "{}",
            packed.len()
        );
        let back = unpack(packed.as_bytes()).unwrap();
        assert_eq!(back.prompt.unwrap().get(), prompt.to_string());
        assert_eq!(back.completion.unwrap().get(), r#""ok""#);
        assert!(back.params.is_none(), "null is not stored");
        assert!(back.returns.is_none());
        assert_eq!(back.attributes.get(), attributes.to_string());
    }

    #[test]
    fn damaged_bytes_are_an_error_not_a_panic() {
        let packed = PackedPayloads::pack(None, None, None, None, &json!({"a": 1}));
        let bytes = packed.as_bytes();
        assert!(matches!(unpack(&[]), Err(UnpackError::Length)));
        assert!(matches!(unpack(&[9, 1, 2]), Err(UnpackError::Format(9))));
        assert!(matches!(unpack(&bytes[..3]), Err(UnpackError::Length)));
        assert!(unpack(&bytes[..bytes.len() - 2]).is_err());
        let mut huge = bytes.to_vec();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(unpack(&huge), Err(UnpackError::Length)));
        assert!(matches!(unpack(b"\x00[1,2]"), Err(UnpackError::Json(_))));
    }
}
