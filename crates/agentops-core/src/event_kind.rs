use std::fmt;

/// What an event is. On the v2 wire this is the `event_type` field.
///
/// The four built-in kinds have fixed spellings (`llms`, `actions`, `tools`, `errors`); any other
/// `event_type` is a custom event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A call to a language model.
    Llm,
    /// Something the agent did.
    Action,
    /// A tool the agent used.
    Tool,
    /// Something that went wrong.
    Error,
    /// Any other event type, named by the user.
    Custom(String),
}

impl EventKind {
    /// The v2 `event_type` value.
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::Llm => "llms",
            EventKind::Action => "actions",
            EventKind::Tool => "tools",
            EventKind::Error => "errors",
            EventKind::Custom(name) => name,
        }
    }

    /// The v2 `event_type` of a built-in kind, as a static string; `None` for custom events.
    pub fn builtin_str(&self) -> Option<&'static str> {
        match self {
            EventKind::Llm => Some("llms"),
            EventKind::Action => Some("actions"),
            EventKind::Tool => Some("tools"),
            EventKind::Error => Some("errors"),
            EventKind::Custom(_) => None,
        }
    }

    /// Reads a v2 `event_type` value; anything unknown is [`EventKind::Custom`].
    pub fn from_wire(event_type: &str) -> Self {
        match event_type {
            "llms" | "llm" => EventKind::Llm,
            "actions" | "action" => EventKind::Action,
            "tools" | "tool" => EventKind::Tool,
            "errors" | "error" => EventKind::Error,
            other => EventKind::Custom(other.to_owned()),
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_wire_spelling() {
        for kind in [
            EventKind::Llm,
            EventKind::Action,
            EventKind::Tool,
            EventKind::Error,
        ] {
            assert_eq!(EventKind::from_wire(kind.as_str()), kind);
        }
        assert_eq!(
            EventKind::from_wire("checkpoint"),
            EventKind::Custom("checkpoint".into())
        );
    }
}
