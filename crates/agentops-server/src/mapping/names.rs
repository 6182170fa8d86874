//! Where a session's name comes from. Each source has a rank; a stored name is replaced only by
//! one of a higher rank, so the order in which spans arrive does not matter:
//!
//! | rank | source |
//! |---|---|
//! | 6 | a `session.name` attribute on any span |
//! | 5 | an AgentOps session span (agentops 0.4 `agentops.span.kind = session`, the Rust SDK's) |
//! | 4 | the root span of a plain trace (no parent, not an AgentOps SDK span) |
//! | 3 | an agent: `gen_ai.agent.name` on a span, or the first agent registered over v2 |
//! | 2 | the tags of a v2 session, joined |
//! | 1 | the resource's `service.name` (not OpenTelemetry's `unknown_service` default) |
//!
//! Names of rank 5 and 6 are explicit: a later one of the same rank replaces the earlier one
//! (a renamed session). Below, the first name of a rank stays.

/// A `session.name` attribute.
pub const SESSION_NAME_ATTRIBUTE: u8 = 6;
/// An AgentOps session span's name.
pub const SESSION_SPAN: u8 = 5;
/// A plain trace's root span.
pub const ROOT_SPAN: u8 = 4;
/// An agent's name.
pub const AGENT: u8 = 3;
/// A v2 session's tags.
pub const TAGS: u8 = 2;
/// The service name.
pub const SERVICE: u8 = 1;

/// The longest name kept, in bytes (longer ones are cut at a character boundary).
pub const MAX_NAME_BYTES: usize = 200;

/// `name` trimmed and cut to [`MAX_NAME_BYTES`]; `None` when empty.
pub fn clean(name: &str) -> Option<String> {
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let mut end = name.len().min(MAX_NAME_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    Some(name[..end].to_owned())
}

/// A service name worth showing: not empty, not the SDKs' `unknown_service[:process]` default.
pub fn service(name: &str) -> Option<String> {
    clean(name).filter(|n| !n.starts_with("unknown_service"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_cut_and_defaults_ignored() {
        assert_eq!(clean("  trip  ").as_deref(), Some("trip"));
        assert_eq!(clean(" "), None);
        assert_eq!(clean(&"é".repeat(150)).map(|n| n.len()), Some(200));
        assert_eq!(service("unknown_service:python"), None);
        assert_eq!(service("checkout").as_deref(), Some("checkout"));
    }
}
