use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a session ended, as the AgentOps API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum EndState {
    /// The agent did what it was asked.
    Success,
    /// The agent failed.
    Fail,
    /// The session is still running, or ended without saying how (for example, dropped).
    #[default]
    Indeterminate,
}

impl EndState {
    /// The wire spelling: `Success`, `Fail` or `Indeterminate`.
    pub fn as_str(self) -> &'static str {
        match self {
            EndState::Success => "Success",
            EndState::Fail => "Fail",
            EndState::Indeterminate => "Indeterminate",
        }
    }
}

impl fmt::Display for EndState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the three end states.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown end state {0:?}: expected Success, Fail or Indeterminate")]
pub struct ParseEndStateError(pub String);

impl FromStr for EndState {
    type Err = ParseEndStateError;

    /// Parses the wire spelling, ignoring ASCII case (`success` and `SUCCESS` are accepted).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [EndState::Success, EndState::Fail, EndState::Indeterminate]
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| ParseEndStateError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_any_case_and_rejects_others() {
        assert_eq!("success".parse(), Ok(EndState::Success));
        assert_eq!("FAIL".parse(), Ok(EndState::Fail));
        assert_eq!("Indeterminate".parse(), Ok(EndState::Indeterminate));
        assert!("done".parse::<EndState>().is_err());
    }

    #[test]
    fn serialises_as_the_wire_spelling() {
        assert_eq!(serde_json::to_string(&EndState::Fail).unwrap(), "\"Fail\"");
    }
}
