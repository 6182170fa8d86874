//! An event's payloads (prompt, completion, params, returns and attributes) packed for storage
//! in one compressed value, and read back from it.
//!
//! Payloads are most of what is stored (a chat span's messages are kilobytes; its other
//! columns, tens of bytes), and the list and statistics never read them. So they are packed
//! before they reach the writer, on the request's thread ([`crate::store::Write::pack`]): the
//! five values as one JSON array, `[prompt, completion, params, returns, attributes]` (absent
//! ones `null`), compressed with zstd. The writer only binds the bytes.
//!
//! Payloads repeat themselves from event to event (system prompts, tool schemas, JSON keys), far
//! more than zstd can see within one event: a dictionary trained on a store's own payloads
//! ([`train_dictionary`]) halves what they take. A store keeps its dictionaries and says which
//! one new payloads are packed with; [`register_dictionary`] makes one known to the process,
//! by an id that is a hash of its bytes.
//!
//! The formats: one byte naming it, then for `ZSTD_JSON_ARRAY` (1) the length of the JSON text
//! (4 bytes, little-endian) and the zstd frame; for `ZSTD_DICTIONARY_JSON_ARRAY` (2) the
//! dictionary's id (8 bytes, little-endian), the length and the frame.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};

use sha2::{Digest, Sha256};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// The format byte of a zstd-compressed JSON array.
const ZSTD_JSON_ARRAY: u8 = 1;
/// The format byte of a JSON array compressed with a dictionary.
const ZSTD_DICTIONARY_JSON_ARRAY: u8 = 2;

/// zstd's level without a dictionary: 1 compresses realistic prompts about as well as 3, at
/// twice the speed.
const LEVEL: i32 = 1;
/// zstd's level with a dictionary, where 3 gains about 8 % over 1.
const DICTIONARY_LEVEL: i32 = 3;
/// The size of a trained dictionary: 16 KiB does as well as larger ones on GenAI payloads.
const DICTIONARY_BYTES: usize = 16 << 10;

/// A compression dictionary known to the process: the first 8 bytes of the SHA-256 of its
/// bytes, so that the same dictionary has the same id in every store and process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DictionaryId(pub u64);

/// A registered dictionary, prepared for both directions (kept for the life of the process:
/// a store has a handful at most).
struct Dictionary {
    encoder: &'static zstd::dict::EncoderDictionary<'static>,
    decoder: &'static zstd::dict::DecoderDictionary<'static>,
}

static DICTIONARIES: LazyLock<RwLock<HashMap<DictionaryId, Dictionary>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

/// Makes the dictionary `bytes` known to the process (again is harmless); its id.
pub fn register_dictionary(bytes: &[u8]) -> DictionaryId {
    let digest = Sha256::digest(bytes);
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    let id = DictionaryId(u64::from_le_bytes(id));
    let mut known = DICTIONARIES.write().unwrap_or_else(|p| p.into_inner());
    known.entry(id).or_insert_with(|| Dictionary {
        encoder: Box::leak(Box::new(zstd::dict::EncoderDictionary::copy(
            bytes,
            DICTIONARY_LEVEL,
        ))),
        decoder: Box::leak(Box::new(zstd::dict::DecoderDictionary::copy(bytes))),
    });
    id
}

/// Whether the dictionary `id` is known to the process (registered).
pub fn is_registered(id: DictionaryId) -> bool {
    DICTIONARIES
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .contains_key(&id)
}

/// Makes the dictionary `id` unknown to the process again, as it is to a replica started
/// before another trained it.
#[cfg(test)]
pub(crate) fn forget_dictionary(id: DictionaryId) {
    DICTIONARIES
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
}

/// The dictionary that packed `bytes` were compressed with, if any (and if the bytes are
/// long enough to say).
pub fn dictionary_of(bytes: &[u8]) -> Option<DictionaryId> {
    match bytes.split_first() {
        Some((&ZSTD_DICTIONARY_JSON_ARRAY, rest)) => {
            let id: [u8; 8] = rest.get(..8)?.try_into().ok()?;
            Some(DictionaryId(u64::from_le_bytes(id)))
        }
        _ => None,
    }
}

/// Payloads a store holds before it trains a dictionary on them.
pub const TRAIN_AFTER: usize = 5_000;
/// How many stored payloads a dictionary is trained on.
pub const TRAINING_SAMPLES: usize = 2_000;

/// A dictionary trained on `samples` (payload texts, see [`payload_text`]).
pub fn train_dictionary(samples: &[Vec<u8>]) -> std::io::Result<Vec<u8>> {
    zstd::dict::from_samples(samples, DICTIONARY_BYTES)
}

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
    /// Packed with a dictionary this process does not know.
    #[error("payload packed with unknown dictionary {0:016x}")]
    UnknownDictionary(u64),
    /// The compressed frame does not decompress.
    #[error("payload does not decompress: {0}")]
    Zstd(#[from] std::io::Error),
    /// The decompressed text is not the JSON array it should be.
    #[error("payload is not a JSON array of five values: {0}")]
    Json(#[from] serde_json::Error),
}

thread_local! {
    /// This thread's compressors, one per dictionary (`None`: without).
    static COMPRESSORS: RefCell<HashMap<Option<DictionaryId>, zstd::bulk::Compressor<'static>>> =
        RefCell::new(HashMap::new());
    static DECOMPRESSORS: RefCell<HashMap<Option<DictionaryId>, zstd::bulk::Decompressor<'static>>> =
        RefCell::new(HashMap::new());
}

/// Runs `f` with this thread's compressor or decompressor (from `cache`) for `dictionary`,
/// made by `make` from the registered dictionary on first use.
fn with_codec<C: 'static, T>(
    cache: &'static std::thread::LocalKey<RefCell<HashMap<Option<DictionaryId>, C>>>,
    dictionary: Option<DictionaryId>,
    make: impl FnOnce(Option<&Dictionary>) -> std::io::Result<C>,
    f: impl FnOnce(&mut C) -> std::io::Result<T>,
) -> Result<T, UnpackError> {
    cache.with(|cell| {
        let mut codecs = cell.borrow_mut();
        let codec = match codecs.entry(dictionary) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let made = match dictionary {
                    None => make(None)?,
                    Some(id) => {
                        let known = DICTIONARIES.read().unwrap_or_else(|p| p.into_inner());
                        let dictionary =
                            known.get(&id).ok_or(UnpackError::UnknownDictionary(id.0))?;
                        make(Some(dictionary))?
                    }
                };
                entry.insert(made)
            }
        };
        Ok(f(codec)?)
    })
}

impl PackedPayloads {
    /// Packs the payloads (`null` ones are stored as absent).
    pub fn pack(
        prompt: Option<&Value>,
        completion: Option<&Value>,
        params: Option<&Value>,
        returns: Option<&Value>,
        attributes: &Value,
        dictionary: Option<DictionaryId>,
    ) -> Self {
        fn present(v: Option<&Value>) -> Option<&Value> {
            v.filter(|v| !v.is_null())
        }
        Self::pack_array(
            [
                present(prompt),
                present(completion),
                present(params),
                present(returns),
            ],
            attributes,
            dictionary,
        )
    }

    /// Packs payloads held as stored JSON text (rows written before packing), keeping their
    /// text as it is (`null` ones are stored as absent).
    pub(crate) fn pack_raw(
        prompt: Option<&RawValue>,
        completion: Option<&RawValue>,
        params: Option<&RawValue>,
        returns: Option<&RawValue>,
        attributes: &RawValue,
        dictionary: Option<DictionaryId>,
    ) -> Self {
        fn present(v: Option<&RawValue>) -> Option<&RawValue> {
            v.filter(|v| v.get() != "null")
        }
        Self::pack_array(
            [
                present(prompt),
                present(completion),
                present(params),
                present(returns),
            ],
            attributes,
            dictionary,
        )
    }

    /// `[prompt, completion, params, returns, attributes]` as JSON, compressed.
    fn pack_array<P: serde::Serialize + ?Sized>(
        [prompt, completion, params, returns]: [Option<&P>; 4],
        attributes: &P,
        dictionary: Option<DictionaryId>,
    ) -> Self {
        let array = (prompt, completion, params, returns, attributes);
        // Serialising JSON values cannot fail.
        Self::compress(
            serde_json::to_vec(&array).unwrap_or_else(|_| b"[]".to_vec()),
            dictionary,
        )
    }

    /// The JSON array `text`, compressed (with `dictionary` when given and known).
    fn compress(text: Vec<u8>, dictionary: Option<DictionaryId>) -> Self {
        let mut packed = Vec::with_capacity(13 + text.len() / 2);
        match dictionary {
            Some(id) => {
                packed.push(ZSTD_DICTIONARY_JSON_ARRAY);
                packed.extend_from_slice(&id.0.to_le_bytes());
            }
            None => packed.push(ZSTD_JSON_ARRAY),
        }
        packed.extend_from_slice(&(text.len() as u32).to_le_bytes());
        let frame = with_codec(
            &COMPRESSORS,
            dictionary,
            |known| match known {
                None => zstd::bulk::Compressor::new(LEVEL),
                Some(known) => zstd::bulk::Compressor::with_prepared_dictionary(known.encoder),
            },
            |compressor| compressor.compress(&text),
        );
        match frame {
            Ok(frame) => packed.extend_from_slice(&frame),
            // An unknown dictionary (a bug) or no memory: packed without one, then as text.
            Err(_) if dictionary.is_some() => return Self::compress(text, None),
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

/// The JSON text of packed payloads (also what a dictionary is trained on).
pub fn payload_text(bytes: &[u8]) -> Result<Vec<u8>, UnpackError> {
    let (&format, rest) = bytes.split_first().ok_or(UnpackError::Length)?;
    let (dictionary, rest) = match format {
        RAW_JSON_ARRAY => return Ok(rest.to_vec()),
        ZSTD_JSON_ARRAY => (None, rest),
        ZSTD_DICTIONARY_JSON_ARRAY => {
            let (id, rest) = rest.split_at_checked(8).ok_or(UnpackError::Length)?;
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(id);
            (Some(DictionaryId(u64::from_le_bytes(bytes))), rest)
        }
        other => return Err(UnpackError::Format(other)),
    };
    let (len, frame) = rest.split_at_checked(4).ok_or(UnpackError::Length)?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if len > MAX_UNPACKED {
        return Err(UnpackError::Length);
    }
    with_codec(
        &DECOMPRESSORS,
        dictionary,
        |known| match known {
            None => zstd::bulk::Decompressor::new(),
            Some(known) => zstd::bulk::Decompressor::with_prepared_dictionary(known.decoder),
        },
        |decompressor| decompressor.decompress(frame, len),
    )
}

/// Stored bytes back into the payloads' JSON texts.
pub(crate) fn unpack(bytes: &[u8]) -> Result<Payloads, UnpackError> {
    let text = payload_text(bytes)?;
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
            None,
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
        let packed = PackedPayloads::pack(None, None, None, None, &json!({"a": 1}), None);
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

    #[test]
    fn a_dictionary_trained_on_payloads_packs_them_smaller_and_is_needed_to_read_them() {
        let event = |i: usize| {
            json!([{"role": "system", "parts": [{"type": "text", "content":
                "You are a travel assistant. Compare three options, prefer refundable bookings."}]},
                {"role": "user", "parts": [{"type": "text", "content": format!("trip number {i} to Oslo")}]}])
        };
        let attributes =
            json!({"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"});
        let samples: Vec<Vec<u8>> = (0..500)
            .map(|i| {
                let packed =
                    PackedPayloads::pack(Some(&event(i)), None, None, None, &attributes, None);
                payload_text(packed.as_bytes()).unwrap()
            })
            .collect();
        let dictionary = train_dictionary(&samples).unwrap();
        let id = register_dictionary(&dictionary);
        assert_eq!(
            register_dictionary(&dictionary),
            id,
            "the id is the bytes' hash"
        );
        let plain = PackedPayloads::pack(Some(&event(1000)), None, None, None, &attributes, None);
        let small =
            PackedPayloads::pack(Some(&event(1000)), None, None, None, &attributes, Some(id));
        assert!(
            small.len() * 2 < plain.len(),
            "{} vs {}",
            small.len(),
            plain.len()
        );
        assert_eq!(
            unpack(small.as_bytes()).unwrap().prompt.unwrap().get(),
            event(1000).to_string()
        );
        // a dictionary this process does not know
        let mut unknown = small.as_bytes().to_vec();
        unknown[1] ^= 0xff;
        assert!(matches!(
            unpack(&unknown),
            Err(UnpackError::UnknownDictionary(_))
        ));
    }
}
