//! Events: what an agent does, recorded into a session.
//!
//! Build an [`Event`] with one of its constructors ([`Event::llm`], [`Event::action`],
//! [`Event::tool`], [`Event::error`], [`Event::custom`]) and its setters, then record it whole
//! with [`crate::Session::record`] or start it and end it later with [`crate::Session::start`].

use std::borrow::Cow;
use std::fmt;
use std::time::SystemTime;

use agentops_core::EventKind;
use opentelemetry::{KeyValue, Value as OtelValue};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

/// An event's id: a UUID, unique within its session and derived from its span's id, so that a
/// span's parent is also an event's parent on the wire. Serialised as its UUID text.
///
/// ```
/// let id: agentops::EventId = "0b1c2d3e-4f50-8a6b-8c7d-9e0f1a2b3c4d".parse().unwrap();
/// assert_eq!(id.to_string(), "0b1c2d3e-4f50-8a6b-8c7d-9e0f1a2b3c4d");
/// assert_eq!(serde_json::to_value(id).unwrap(), serde_json::json!(id.to_string()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub Uuid);

/// An agent's id, as given by [`crate::Session::create_agent`]. Serialised as its UUID text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentId(pub Uuid);

macro_rules! uuid_text {
    ($id:ident) => {
        impl fmt::Display for $id {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $id {
            type Err = uuid::Error;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(text).map($id)
            }
        }

        impl From<Uuid> for $id {
            fn from(uuid: Uuid) -> Self {
                $id(uuid)
            }
        }
    };
}

uuid_text!(EventId);
uuid_text!(AgentId);

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

/// The kind-specific fields of each built-in kind, in the Python SDK's order. Unset ones are
/// sent as `null`, as the Python SDK does.
const LLM_FIELDS: &[&str] = &[
    "thread_id",
    "prompt",
    "prompt_tokens",
    "completion",
    "completion_tokens",
    "cost",
    "model",
];
const ACTION_FIELDS: &[&str] = &["action_type", "logs", "screenshot", "name"];
const TOOL_FIELDS: &[&str] = &["name", "logs", "tool_name"];
const ERROR_FIELDS: &[&str] = &[
    "trigger_event",
    "exception",
    "error_type",
    "code",
    "details",
    "logs",
];

/// Something an agent did: an LLM call, an action, a tool call, an error, or a custom event.
///
/// Values given to setters are serialised to JSON once, when set.
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
    params: Option<Box<RawValue>>,
    returns: Option<Box<RawValue>>,
    agent_id: Option<AgentId>,
    /// Fields set so far, kind-specific or custom, as JSON.
    fields: Vec<(Cow<'static, str>, Box<RawValue>)>,
    pub(crate) start: Option<SystemTime>,
    pub(crate) end: Option<SystemTime>,
    pub(crate) attributes: Vec<KeyValue>,
    /// The event an error reports on (sampling keeps it).
    pub(crate) trigger: Option<EventId>,
}

impl Event {
    fn new(kind: EventKind, name: String) -> Self {
        Self {
            kind,
            name,
            params: None,
            returns: None,
            agent_id: None,
            fields: Vec::new(),
            start: None,
            end: None,
            attributes: Vec::new(),
            trigger: None,
        }
    }

    /// A call to a language model.
    pub fn llm(model: impl Into<String>) -> Self {
        let event = Self::new(EventKind::Llm, model.into());
        let model = raw_json(&event.name);
        event.set("model", model)
    }

    /// Something the agent did, such as `search_web`.
    pub fn action(action_type: impl Into<String>) -> Self {
        let event = Self::new(EventKind::Action, action_type.into());
        let action_type = raw_json(&event.name);
        event
            .set("action_type", action_type.clone())
            .set("name", action_type)
    }

    /// A tool the agent used.
    pub fn tool(name: impl Into<String>) -> Self {
        let event = Self::new(EventKind::Tool, name.into());
        let name = raw_json(&event.name);
        event.set("name", name.clone()).set("tool_name", name)
    }

    /// Something that went wrong, such as `ValueError` or `RateLimited`. Error events are never
    /// sampled out.
    pub fn error(error_type: impl Into<String>) -> Self {
        let event = Self::new(EventKind::Error, error_type.into());
        let error_type = raw_json(&event.name);
        event.set("error_type", error_type)
    }

    /// An error event describing `error`: its type name (the last path segment of the Rust
    /// type, such as `ParseIntError`), its message as details, and its chain of sources as the
    /// exception text.
    ///
    /// ```
    /// let err = "x".parse::<u8>().unwrap_err();
    /// let event = agentops::Event::from_error(&err);
    /// assert_eq!(event.name(), "ParseIntError");
    /// ```
    pub fn from_error<E: std::error::Error + ?Sized>(error: &E) -> Self {
        let type_name = std::any::type_name::<E>();
        let short = type_name
            .split('<')
            .next()
            .and_then(|path| path.rsplit("::").next())
            .filter(|name| !name.is_empty() && *name != "dyn Error")
            .unwrap_or("Error");
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push_str("\ncaused by: ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::error(short)
            .details(error.to_string())
            .exception(chain)
    }

    /// An event of a type of your own (its `event_type` on the wire).
    pub fn custom(event_type: impl Into<String>) -> Self {
        let event_type = event_type.into();
        Self::new(EventKind::Custom(event_type.clone()), event_type)
    }

    fn set(mut self, key: impl Into<Cow<'static, str>>, value: Box<RawValue>) -> Self {
        let key = key.into();
        match self
            .fields
            .iter_mut()
            .find(|(existing, _)| *existing == key)
        {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key, value)),
        }
        self
    }

    fn set_json(self, key: &'static str, value: impl Serialize) -> Self {
        self.set(key, raw_json(value))
    }

    fn field(&self, key: &str) -> Option<&RawValue> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| &**v)
    }

    /// What kind of event this is.
    pub fn kind(&self) -> &EventKind {
        &self.kind
    }

    /// Its display name (the model, action type, tool name, error type or custom type).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames it; the name is the span's name (and the `name` field of actions and tools).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        if self.field("name").is_some() {
            let name = raw_json(&self.name);
            self = self.set("name", name);
        }
        self
    }

    /// What it was given (any serialisable value).
    pub fn params(mut self, params: impl Serialize) -> Self {
        self.params = Some(raw_json(params));
        self
    }

    /// What it gave back (any serialisable value).
    pub fn returns(mut self, returns: impl Serialize) -> Self {
        self.returns = Some(raw_json(returns));
        self
    }

    /// The agent that did it (by default, the current agent: see [`AgentId::enter`]).
    pub fn agent(mut self, agent: AgentId) -> Self {
        self.agent_id = Some(agent);
        self
    }

    /// Sets the agent unless one is set.
    pub(crate) fn default_agent(&mut self, agent: AgentId) {
        self.agent_id.get_or_insert(agent);
    }

    /// Free-form logs (a string or any serialisable value): actions, tools and errors.
    pub fn logs(self, logs: impl Serialize) -> Self {
        self.set_json("logs", logs)
    }

    /// A screenshot (URL or data URI) of an action.
    pub fn screenshot(self, screenshot: impl Into<String>) -> Self {
        self.set_json("screenshot", screenshot.into())
    }

    /// The prompt of an LLM call, as text.
    pub fn prompt(self, prompt: impl Into<String>) -> Self {
        self.set_json("prompt", prompt.into())
    }

    /// The prompt of an LLM call, as chat messages.
    pub fn prompt_messages(self, messages: impl IntoIterator<Item = ChatMessage>) -> Self {
        self.set_json("prompt", messages.into_iter().collect::<Vec<_>>())
    }

    /// The completion of an LLM call, as text.
    pub fn completion(self, completion: impl Into<String>) -> Self {
        self.set_json("completion", completion.into())
    }

    /// The completion of an LLM call, as a chat message.
    pub fn completion_message(self, message: ChatMessage) -> Self {
        self.set_json("completion", message)
    }

    /// Prompt and completion token counts of an LLM call.
    pub fn tokens(self, prompt_tokens: u64, completion_tokens: u64) -> Self {
        self.set_json("prompt_tokens", prompt_tokens)
            .set_json("completion_tokens", completion_tokens)
    }

    /// Input tokens of an LLM call read from a cache (part of the prompt tokens).
    pub fn cached_tokens(self, tokens: u64) -> Self {
        self.set_json("cached_tokens", tokens)
    }

    /// Reasoning tokens of an LLM call (part of the completion tokens).
    pub fn reasoning_tokens(self, tokens: u64) -> Self {
        self.set_json("reasoning_tokens", tokens)
    }

    /// The prompt of an LLM call as any JSON (for example the provider's own messages, with
    /// their tool calls).
    pub fn prompt_json(self, prompt: impl Serialize) -> Self {
        self.set_json("prompt", prompt)
    }

    /// The completion of an LLM call as any JSON (for example the provider's message with its
    /// tool calls).
    pub fn completion_json(self, completion: impl Serialize) -> Self {
        self.set_json("completion", completion)
    }

    /// The raw JSON body of the OpenAI-compatible chat-completions request this LLM call
    /// sent. It is decoded on the delivery thread, not the caller's: its messages become the
    /// prompt, its other parameters the params, and its model the model when none is set.
    pub fn chat_request_json(self, body: impl Into<String>) -> Self {
        self.attribute(crate::exporter::chat_payload::REQUEST, body.into())
    }

    /// The raw JSON body of the OpenAI-compatible chat-completions response this LLM call
    /// got. It is decoded on the delivery thread: the assistant's message (with its tool
    /// calls) becomes the completion, the usage the token counts (cached and reasoning
    /// included), and the response's model, id and finish reason GenAI attributes.
    pub fn chat_response_json(self, body: impl Into<String>) -> Self {
        self.attribute(crate::exporter::chat_payload::RESPONSE, body.into())
    }

    /// The cost of an LLM call in US dollars, when the caller knows it (the server keeps it).
    pub fn cost(self, usd: f64) -> Self {
        self.set_json("cost", usd)
    }

    /// The conversation thread an LLM call belongs to.
    pub fn thread_id(self, thread: Uuid) -> Self {
        self.set_json("thread_id", thread)
    }

    /// An error's code.
    pub fn code(self, code: impl Into<String>) -> Self {
        self.set_json("code", code.into())
    }

    /// An error's details (its message).
    pub fn details(self, details: impl Into<String>) -> Self {
        self.set_json("details", details.into())
    }

    /// An error's exception text (for example a backtrace).
    pub fn exception(self, exception: impl Into<String>) -> Self {
        self.set_json("exception", exception.into())
    }

    /// The event whose failure this error reports.
    pub fn trigger(mut self, event: EventId) -> Self {
        self.trigger = Some(event);
        self.set_json("trigger_event", event.0)
    }

    /// A field of your own in the event's data (it replaces a built-in field of that name).
    pub fn with_field(self, key: impl Into<String>, value: impl Serialize) -> Self {
        self.set(key.into(), raw_json(value))
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

    /// When it ended (default: when it is recorded or ended, even when it started earlier).
    pub fn ended_at(mut self, time: SystemTime) -> Self {
        self.end = Some(time);
        self
    }

    /// An error's details, as text (the span's status message).
    pub(crate) fn details_text(&self) -> Option<String> {
        serde_json::from_str(self.field("details")?.get()).ok()
    }

    /// The `event.data` attribute: `params`, `returns`, `agent_id`, then the kind's fields
    /// (`null` where unset), then any others, as one JSON object.
    pub(crate) fn data_json(&self) -> String {
        let kind_fields = match self.kind {
            EventKind::Llm => LLM_FIELDS,
            EventKind::Action => ACTION_FIELDS,
            EventKind::Tool => TOOL_FIELDS,
            EventKind::Error => ERROR_FIELDS,
            EventKind::Custom(_) => &[],
        };
        let mut out = String::with_capacity(
            64 + self
                .fields
                .iter()
                .map(|(k, v)| k.len() + v.get().len() + 4)
                .sum::<usize>(),
        );
        out.push_str("{\"params\":");
        out.push_str(raw_or_null(self.params.as_deref()));
        out.push_str(",\"returns\":");
        out.push_str(raw_or_null(self.returns.as_deref()));
        out.push_str(",\"agent_id\":");
        match self.agent_id {
            Some(agent) => {
                out.push('"');
                out.push_str(
                    agent
                        .0
                        .hyphenated()
                        .encode_lower(&mut Uuid::encode_buffer()),
                );
                out.push('"');
            }
            None => out.push_str("null"),
        }
        for key in kind_fields {
            out.push_str(",\"");
            out.push_str(key);
            out.push_str("\":");
            out.push_str(raw_or_null(self.field(key)));
        }
        for (key, value) in &self.fields {
            if kind_fields.contains(&key.as_ref()) {
                continue;
            }
            out.push(',');
            out.push_str(raw_json(key.as_ref()).get());
            out.push(':');
            out.push_str(value.get());
        }
        out.push('}');
        out
    }
}

fn raw_or_null(value: Option<&RawValue>) -> &str {
    value.map_or("null", RawValue::get)
}

/// Serialises a value to JSON; a value that cannot be (a map with non-string keys, say)
/// becomes a string saying so, rather than an error in the middle of the agent's work.
fn raw_json(value: impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(&value).unwrap_or_else(|err| {
        serde_json::value::to_raw_value(&format!("<unserialisable: {err}>")).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn data(event: &Event) -> Value {
        serde_json::from_str(&event.data_json()).unwrap()
    }

    #[test]
    fn each_kind_carries_the_python_sdk_fields() {
        let tool = Event::tool("calculator")
            .params(json!({"expr": "2+2"}))
            .returns("4");
        assert_eq!(
            data(&tool),
            json!({"params": {"expr": "2+2"}, "returns": "4", "agent_id": null,
                   "name": "calculator", "logs": null, "tool_name": "calculator"})
        );

        let error = Event::error("ValueError")
            .details("bad \"value\"")
            .code("E1");
        assert_eq!(data(&error)["details"], "bad \"value\"");
        assert_eq!(data(&error)["trigger_event"], Value::Null);
        assert_eq!(error.details_text().as_deref(), Some("bad \"value\""));

        let llm = Event::llm("gpt-4o")
            .prompt_messages([ChatMessage::user("hi")])
            .tokens(3, 2);
        let llm = data(&llm);
        assert_eq!(llm["prompt"][0]["role"], "user");
        assert_eq!(llm["completion_tokens"], 2);
        assert_eq!(llm["model"], "gpt-4o");
        assert_eq!(llm.as_object().unwrap().len(), 10);
    }

    #[test]
    fn renaming_an_action_renames_its_name_field() {
        let action = data(&Event::action("search").named("search the web"));
        assert_eq!(action["name"], "search the web");
        assert_eq!(action["action_type"], "search");
    }

    #[test]
    fn custom_fields_are_escaped_and_a_later_value_wins() {
        let event = Event::custom("checkpoint")
            .with_field("step", 1)
            .with_field("we\"ird", "x")
            .with_field("step", 3)
            .agent(AgentId(Uuid::nil()));
        assert_eq!(
            data(&event),
            json!({"params": null, "returns": null, "agent_id": Uuid::nil().to_string(),
                   "step": 3, "we\"ird": "x"})
        );
    }
}
