//! Model prices and the cost of an LLM call.
//!
//! A [`PriceTable`] maps model names to [`ModelPrice`]s in US dollars per million tokens. The
//! table shipped with AgentOps ([`PriceTable::builtin`], from `data/prices.json`) covers current
//! OpenAI, Anthropic, Google and Mistral models; a deployment can load its own with
//! [`PriceTable::from_json`].
//!
//! Token accounting follows the providers: cached input tokens are *part of* the input tokens
//! (and billed at the cheaper cached price), reasoning tokens are *part of* the output tokens.
//!
//! ```
//! use agentops_core::pricing::{PriceTable, Usage};
//! let table = PriceTable::builtin();
//! let usage = Usage { input_tokens: 1_000_000, output_tokens: 0, cached_tokens: 0 };
//! assert_eq!(table.cost("gpt-4o-2024-08-06", &usage), Some(2.5));
//! assert_eq!(table.cost("no-such-model", &usage), None);
//! ```

use std::collections::HashMap;

use serde::Deserialize;

/// The price table shipped with AgentOps, as JSON.
pub const BUILTIN_PRICES_JSON: &str = include_str!("../data/prices.json");

/// Prices of one model, US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct ModelPrice {
    /// Uncached input (prompt) tokens.
    pub input: f64,
    /// Input tokens read from the prompt cache; the input price when the model has none.
    #[serde(default)]
    pub cached_input: Option<f64>,
    /// Output (completion) tokens, reasoning included.
    pub output: f64,
}

/// Token counts of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// All input tokens, cached ones included.
    pub input_tokens: u64,
    /// All output tokens, reasoning ones included.
    pub output_tokens: u64,
    /// How many of the input tokens came from the prompt cache.
    pub cached_tokens: u64,
}

/// A price file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PriceTableError {
    /// Not JSON of the expected shape.
    #[error("invalid price table: {0}")]
    Json(#[from] serde_json::Error),
    /// A price that is negative or not a number.
    #[error("invalid price for model {0:?}: prices must be finite and non-negative")]
    BadPrice(String),
}

#[derive(Deserialize)]
struct PriceFile {
    models: HashMap<String, ModelPrice>,
}

/// Model name → price, with lenient name matching (see [`PriceTable::price`]).
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    models: HashMap<String, ModelPrice>,
}

impl PriceTable {
    /// The table shipped with AgentOps.
    pub fn builtin() -> Self {
        // The shipped file is checked by a unit test; an empty table is the safe fallback.
        Self::from_json(BUILTIN_PRICES_JSON).unwrap_or_default()
    }

    /// Reads a table of the form `{"models": {"gpt-4o": {"input": 2.5, "cached_input": 1.25, "output": 10}}}`.
    pub fn from_json(text: &str) -> Result<Self, PriceTableError> {
        let file: PriceFile = serde_json::from_str(text)?;
        let mut models = HashMap::with_capacity(file.models.len());
        for (name, price) in file.models {
            let ok = |p: f64| p.is_finite() && p >= 0.0;
            if !ok(price.input) || !ok(price.output) || !price.cached_input.is_none_or(ok) {
                return Err(PriceTableError::BadPrice(name));
            }
            models.insert(name.to_ascii_lowercase(), price);
        }
        Ok(Self { models })
    }

    /// How many models the table knows.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// The price of `model`: an exact (case-insensitive) match, else the same after dropping a
    /// provider prefix (`openai/gpt-4o`, `anthropic.claude-…`, `models/gemini-…`), else the
    /// longest known name that `model` starts with (dated snapshots, `-latest`).
    pub fn price(&self, model: &str) -> Option<ModelPrice> {
        let lower = model.trim().to_ascii_lowercase();
        let mut name = lower.as_str();
        if let Some(p) = self.models.get(name) {
            return Some(*p);
        }
        if let Some(pos) = name.rfind('/') {
            name = &name[pos + 1..];
        }
        for prefix in ["anthropic.", "us.anthropic.", "eu.anthropic.", "mistral."] {
            if let Some(rest) = name.strip_prefix(prefix) {
                name = rest;
            }
        }
        if let Some(p) = self.models.get(name) {
            return Some(*p);
        }
        self.models
            .iter()
            .filter(|(known, _)| {
                name.starts_with(known.as_str())
                    && matches!(
                        name.as_bytes().get(known.len()),
                        Some(b'-' | b'@' | b':' | b'.')
                    )
            })
            .max_by_key(|(known, _)| known.len())
            .map(|(_, p)| *p)
    }

    /// The cost in US dollars of a call to `model` with `usage`, or `None` for an unknown model.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        let price = self.price(model)?;
        let cached = usage.cached_tokens.min(usage.input_tokens);
        let uncached = usage.input_tokens - cached;
        let cached_price = price.cached_input.unwrap_or(price.input);
        let micro = uncached as f64 * price.input
            + cached as f64 * cached_price
            + usage.output_tokens as f64 * price.output;
        Some(micro / 1_000_000.0)
    }
}

/// Formats a dollar amount as a decimal string, as `update_session` answers it: at least two
/// decimals, at most ten, no trailing zeros beyond two (`"0.00"`, `"0.0123"`, `"1.50"`).
///
/// ```
/// assert_eq!(agentops_core::pricing::format_cost(0.0), "0.00");
/// assert_eq!(agentops_core::pricing::format_cost(0.0123), "0.0123");
/// assert_eq!(agentops_core::pricing::format_cost(1.5), "1.50");
/// ```
pub fn format_cost(dollars: f64) -> String {
    if !dollars.is_finite() || dollars <= 0.0 {
        return "0.00".to_owned();
    }
    let mut text = format!("{dollars:.10}");
    while text.ends_with('0') && text.len() - text.find('.').unwrap_or(0) > 3 {
        text.pop();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, cached: u64, output: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
            cached_tokens: cached,
        }
    }

    #[test]
    fn builtin_table_parses_and_covers_the_major_providers() {
        let table = PriceTable::from_json(BUILTIN_PRICES_JSON).unwrap();
        for model in [
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-4.1",
            "gpt-4.1-mini",
            "o1",
            "o3",
            "o4-mini",
            "gpt-5",
            "gpt-5-mini",
            "claude-3-5-sonnet-20241022",
            "claude-3-7-sonnet-latest",
            "claude-sonnet-4-20250514",
            "claude-sonnet-4-5",
            "claude-opus-4-1-20250805",
            "claude-3-5-haiku-20241022",
            "claude-haiku-4-5",
            "gemini-1.5-pro",
            "gemini-2.0-flash",
            "gemini-2.5-pro",
            "gemini-2.5-flash",
            "mistral-large-latest",
            "mistral-small-2503",
        ] {
            assert!(table.price(model).is_some(), "{model} has no price");
        }
    }

    #[test]
    fn longest_prefix_wins_and_prefixes_are_dropped() {
        let table = PriceTable::builtin();
        assert_eq!(table.price("gpt-4o-mini-2024-07-18").unwrap().input, 0.15);
        assert_eq!(table.price("gpt-4o-2024-08-06").unwrap().input, 2.5);
        assert_eq!(table.price("openai/GPT-4o").unwrap().input, 2.5);
        assert_eq!(
            table.price("models/gemini-2.5-flash-lite").unwrap().input,
            0.1
        );
        assert_eq!(
            table
                .price("anthropic.claude-3-5-sonnet-20240620-v1:0")
                .unwrap()
                .output,
            15.0
        );
        assert!(table.price("gpt-4ox").is_none());
    }

    #[test]
    fn cached_tokens_are_inside_input_and_cheaper() {
        let table = PriceTable::builtin();
        let plain = table
            .cost("gpt-4o", &usage(1_000_000, 0, 1_000_000))
            .unwrap();
        assert!((plain - 12.5).abs() < 1e-9);
        let cached = table
            .cost("gpt-4o", &usage(1_000_000, 400_000, 1_000_000))
            .unwrap();
        assert!((cached - (0.6 * 2.5 + 0.4 * 1.25 + 10.0)).abs() < 1e-9);
        // more cached than input is clamped
        let clamped = table.cost("gpt-4o", &usage(10, 50, 0)).unwrap();
        assert!((clamped - 10.0 * 1.25 / 1e6).abs() < 1e-15);
        // a model without a cached price bills cached tokens at the input price
        let mistral = table
            .cost("mistral-large", &usage(1_000_000, 500_000, 0))
            .unwrap();
        assert!((mistral - 2.0).abs() < 1e-9);
    }

    #[test]
    fn small_call_costs() {
        let table = PriceTable::builtin();
        let c = table.cost("gpt-4o-mini", &usage(7, 0, 1)).unwrap();
        assert!((c - (7.0 * 0.15 + 0.6) / 1e6).abs() < 1e-15);
    }

    #[test]
    fn rejects_bad_tables() {
        assert!(PriceTable::from_json("{}").is_err());
        assert!(PriceTable::from_json(r#"{"models":{"m":{"input":-1,"output":1}}}"#).is_err());
        let t = PriceTable::from_json(r#"{"models":{"My-Model":{"input":1,"output":2}}}"#).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.cost("my-model", &usage(1_000_000, 0, 0)), Some(1.0));
    }

    #[test]
    fn formats_costs() {
        assert_eq!(format_cost(0.0), "0.00");
        assert_eq!(format_cost(-1.0), "0.00");
        assert_eq!(format_cost(0.0001), "0.0001");
        assert_eq!(format_cost(2.0), "2.00");
        assert_eq!(format_cost(0.000_001_65), "0.00000165");
    }
}
