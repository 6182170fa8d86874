//! Events: what an agent does, recorded into a session.
//!
//! Build an [`Event`] with one of its constructors ([`Event::llm`], [`Event::action`],
//! [`Event::tool`], [`Event::error`], [`Event::custom`]) and its setters, then record it whole
//! with [`crate::Session::record`] or start it and end it later with [`crate::Session::start`].

use std::fmt;
use std::time::SystemTime;

use agentops_core::EventKind;
use opentelemetry::{KeyValue, Value as OtelValue};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// An event's id: a UUID, unique within its session and derived from its span's id, so that a
/// span's parent is also an event's parent on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub Uuid);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An agent's id, as given by [`crate::Session::create_agent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgentId(pub Uuid);

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One message of a chat prompt or completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, `tool`, …
    pub role: String,
    /// The message text.
    pub content: String,
}

impl ChatMessage {
    /// A message with any role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
    /// A `system` message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }
    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }
    /// An `assistant` message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// Something an agent did: an LLM call, an action, a tool call, an error, or a custom event.
///
/// ```
/// use agentops::{ChatMessage, Event};
/// let call = Event::llm("gpt-4o-mini")
///     .prompt_messages([ChatMessage::user("What is 2+2?")])
///     .completion("4")
///     .tokens(7, 1)
///     .params(serde_json::json!({"temperature": 0.0}));
/// assert_eq!(call.kind().as_str(), "llms");
/// assert_eq!(call.name(), "gpt-4o-mini");
/// ```
#[derive(Debug, Clone)]
pub struct Event {
    pub(crate) kind: EventKind,
    pub(crate) name: String,
    /// `params`, `returns`, `agent_id` and the kind's own fields, in wire order.
    pub(crate) data: Map<String, Value>,
    pub(crate) start: Option<SystemTime>,
    pub(crate) end: Option<SystemTime>,
    pub(crate) attributes: Vec<KeyValue>,
}

impl Event {
    fn new(kind: EventKind, name: String, kind_fields: &[&str]) -> Self {
        let mut data = Map::with_capacity(3 + kind_fields.len());
        for key in ["params", "returns", "agent_id"].iter().chain(kind_fields) {
            data.insert((*key).to_owned(), Value::Null);
        }
        Self {
            kind,
            name,
            data,
            start: None,
            end: None,
            attributes: Vec::new(),
        }
    }

    /// A call to a language model.
    pub fn llm(model: impl Into<String>) -> Self {
        let model = model.into();
        let fields = [
            "thread_id",
            "prompt",
            "prompt_tokens",
            "completion",
            "completion_tokens",
            "cost",
            "model",
        ];
        Self::new(EventKind::Llm, model.clone(), &fields).set("model", model)
    }

    /// Something the agent did, such as `search_web`.
    pub fn action(action_type: impl Into<String>) -> Self {
        let action_type = action_type.into();
        Self::new(
            EventKind::Action,
            action_type.clone(),
            &["action_type", "logs", "screenshot", "name"],
        )
        .set("action_type", action_type.clone())
        .set("name", action_type)
    }

    /// A tool the agent used.
    pub fn tool(name: impl Into<String>) -> Self {
        let name = name.into();
        Self::new(
            EventKind::Tool,
            name.clone(),
            &["name", "logs", "tool_name"],
        )
        .set("name", name.clone())
        .set("tool_name", name)
    }

    /// Something that went wrong, such as `ValueError` or `RateLimited`. Error events are never
    /// sampled out.
    pub fn error(error_type: impl Into<String>) -> Self {
        let error_type = error_type.into();
        let fields = [
            "trigger_event",
            "exception",
            "error_type",
            "code",
            "details",
            "logs",
        ];
        Self::new(EventKind::Error, error_type.clone(), &fields).set("error_type", error_type)
    }

    /// An event of a type of your own (its `event_type` on the wire).
    pub fn custom(event_type: impl Into<String>) -> Self {
        let event_type = event_type.into();
        Self::new(EventKind::Custom(event_type.clone()), event_type, &[])
    }

    fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Some(slot) = self.data.get_mut(key) {
            *slot = value.into();
        } else {
            self.data.insert(key.to_owned(), value.into());
        }
        self
    }

    fn set_json(self, key: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value)
            .unwrap_or_else(|err| Value::String(format!("<unserialisable: {err}>")));
        self.set(key, value)
    }

    /// What kind of event this is.
    pub fn kind(&self) -> &EventKind {
        &self.kind
    }

    /// Its display name (the model, action type, tool name, error type or custom type).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames it; the name is the span's name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        if self.data.contains_key("name") {
            let name = self.name.clone();
            self = self.set("name", name);
        }
        self
    }

    /// What it was given (any serialisable value).
    pub fn params(self, params: impl Serialize) -> Self {
        self.set_json("params", params)
    }

    /// What it gave back (any serialisable value).
    pub fn returns(self, returns: impl Serialize) -> Self {
        self.set_json("returns", returns)
    }

    /// The agent that did it.
    pub fn agent(self, agent: AgentId) -> Self {
        self.set("agent_id", agent.0.to_string())
    }

    /// Free-form logs (a string or any serialisable value): actions, tools and errors.
    pub fn logs(self, logs: impl Serialize) -> Self {
        self.set_json("logs", logs)
    }

    /// A screenshot (URL or data URI) of an action.
    pub fn screenshot(self, screenshot: impl Into<String>) -> Self {
        self.set("screenshot", screenshot.into())
    }

    /// The prompt of an LLM call, as text.
    pub fn prompt(self, prompt: impl Into<String>) -> Self {
        self.set("prompt", prompt.into())
    }

    /// The prompt of an LLM call, as chat messages.
    pub fn prompt_messages(self, messages: impl IntoIterator<Item = ChatMessage>) -> Self {
        self.set_json("prompt", messages.into_iter().collect::<Vec<_>>())
    }

    /// The completion of an LLM call, as text.
    pub fn completion(self, completion: impl Into<String>) -> Self {
        self.set("completion", completion.into())
    }

    /// The completion of an LLM call, as a chat message.
    pub fn completion_message(self, message: ChatMessage) -> Self {
        self.set_json("completion", message)
    }

    /// Prompt and completion token counts of an LLM call.
    pub fn tokens(self, prompt_tokens: u64, completion_tokens: u64) -> Self {
        self.set("prompt_tokens", prompt_tokens)
            .set("completion_tokens", completion_tokens)
    }

    /// The cost of an LLM call in US dollars, when the caller knows it (the server keeps it).
    pub fn cost(self, usd: f64) -> Self {
        self.set("cost", usd)
    }

    /// The conversation thread an LLM call belongs to.
    pub fn thread_id(self, thread: Uuid) -> Self {
        self.set("thread_id", thread.to_string())
    }

    /// An error's code.
    pub fn code(self, code: impl Into<String>) -> Self {
        self.set("code", code.into())
    }

    /// An error's details (its message).
    pub fn details(self, details: impl Into<String>) -> Self {
        self.set("details", details.into())
    }

    /// An error's exception text (for example a backtrace).
    pub fn exception(self, exception: impl Into<String>) -> Self {
        self.set("exception", exception.into())
    }

    /// The event whose failure this error reports.
    pub fn trigger(self, event: EventId) -> Self {
        self.set("trigger_event", event.0.to_string())
    }

    /// A field of your own in the event's data.
    pub fn field(self, key: &str, value: impl Serialize) -> Self {
        self.set_json(key, value)
    }

    /// An attribute of your own on the event's span.
    pub fn attribute(
        mut self,
        key: impl Into<opentelemetry::Key>,
        value: impl Into<OtelValue>,
    ) -> Self {
        self.attributes.push(KeyValue::new(key, value));
        self
    }

    /// When it started (default: when it is recorded or started).
    pub fn started_at(mut self, time: SystemTime) -> Self {
        self.start = Some(time);
        self
    }

    /// When it ended (default: when it is recorded or ended).
    pub fn ended_at(mut self, time: SystemTime) -> Self {
        self.end = Some(time);
        self
    }

    /// The `event.data` attribute: the event's fields as JSON.
    pub(crate) fn data_json(&self) -> String {
        serde_json::to_string(&self.data).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_carries_the_python_sdk_fields() {
        let tool = Event::tool("calculator")
            .params(serde_json::json!({"expr": "2+2"}))
            .returns("4");
        let keys: Vec<_> = tool.data.keys().cloned().collect();
        for key in ["params", "returns", "agent_id", "name", "logs", "tool_name"] {
            assert!(
                keys.contains(&key.to_owned()),
                "{key} missing from {keys:?}"
            );
        }
        assert_eq!(tool.data["tool_name"], "calculator");

        let error = Event::error("ValueError").details("bad value").code("E1");
        assert_eq!(error.data["details"], "bad value");
        assert_eq!(error.data["trigger_event"], Value::Null);

        let llm = Event::llm("gpt-4o")
            .prompt_messages([ChatMessage::user("hi")])
            .tokens(3, 2);
        assert_eq!(llm.data["prompt"][0]["role"], "user");
        assert_eq!(llm.data["completion_tokens"], 2);
    }

    #[test]
    fn renaming_an_action_renames_its_name_field() {
        let action = Event::action("search").named("search the web");
        assert_eq!(action.data["name"], "search the web");
        assert_eq!(action.data["action_type"], "search");
    }
}
