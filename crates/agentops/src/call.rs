//! What the attribute macros (`#[agentops::action]`, `#[agentops::tool]`, `#[agentops::llm]`)
//! expand to call. Not a public API: the expansion refers to it as `agentops::__private`.

use std::fmt::{Debug, Display};
use std::future::Future;

use opentelemetry::context::{FutureExt as _, WithContext};
use opentelemetry::Context;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Event, EventSpan, SessionGuard};

/// What kind of event a recorded function is.
#[derive(Debug, Clone, Copy)]
pub enum CallKind {
    /// `#[agentops::action]`
    Action,
    /// `#[agentops::tool]`
    Tool,
    /// `#[agentops::llm]`
    Llm,
}

/// One call of a recorded function: an event started in the current session (none when no
/// session is current), ended by [`Call::returned`] or [`Call::failed`].
#[derive(Debug)]
pub struct Call {
    kind: CallKind,
    span: Option<EventSpan>,
}

impl Call {
    /// Starts the call's event; `params` is evaluated only when a session records it.
    pub fn start(
        kind: CallKind,
        name: &str,
        model: Option<&str>,
        params: impl FnOnce() -> Value,
    ) -> Self {
        let Ok(session) = crate::global::session() else {
            return Self { kind, span: None };
        };
        let event = match kind {
            CallKind::Action => Event::action(name).params(params()),
            CallKind::Tool => Event::tool(name).params(params()),
            CallKind::Llm => Event::llm(model.unwrap_or(name)).prompt_json(params()),
        };
        Self {
            kind,
            span: session.start_event(event).ok(),
        }
    }

    /// Makes the call's event current on this thread (its events become children).
    pub fn enter(&self) -> Option<SessionGuard> {
        self.span.as_ref().map(EventSpan::enter)
    }

    /// Runs the call's future with its event current.
    pub fn scope<F: Future>(&self, future: F) -> WithContext<F> {
        match &self.span {
            Some(span) => span.scope(future),
            None => future.with_context(Context::current()),
        }
    }

    /// Ends the call with what it returned (when recorded).
    pub fn returned(self, value: Option<Value>) {
        let (kind, Some(span)) = (self.kind, self.span) else {
            return;
        };
        span.end_with(|event| match (kind, value) {
            (_, None) => event,
            (CallKind::Llm, Some(value)) => event.completion_json(value),
            (_, Some(value)) => event.returns(value),
        });
    }

    /// Ends the call as failed: an error event, child of the call, names it as its trigger.
    pub fn failed(self, error_type: &str, message: String) {
        let Some(span) = self.span else {
            return;
        };
        let error = Event::error(error_type).details(message).trigger(span.id());
        {
            let _inside = span.enter();
            let _ = span.session().record(error);
        }
        span.end();
    }
}

/// The params object of a call.
pub fn params(values: &[(&str, Value)]) -> Value {
    Value::Object(
        values
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone()))
            .collect::<Map<String, Value>>(),
    )
}

/// What a redacted argument is recorded as.
pub fn redacted() -> Value {
    Value::String("[redacted]".to_owned())
}

/// The last path segment of a value's type name (`ParseIntError`, not `core::num::…`).
pub fn type_name_of<T: ?Sized>(_: &T) -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

/// A value to record, resolved at compile time to the best way to write it: JSON when it is
/// `Serialize`, else its `Debug` text, else its type name (autoref specialisation).
pub struct Probe<'a, T: ?Sized>(pub &'a T);

/// JSON of a `Serialize` value.
pub trait JsonViaSerialize {
    /// The value as JSON.
    fn agentops_json(&self) -> Value;
}

impl<T: Serialize + ?Sized> JsonViaSerialize for &&Probe<'_, T> {
    fn agentops_json(&self) -> Value {
        serde_json::to_value(self.0)
            .unwrap_or_else(|err| Value::String(format!("<unserialisable: {err}>")))
    }
}

/// The `Debug` text of a value that is not `Serialize`.
pub trait JsonViaDebug {
    /// The value as JSON text.
    fn agentops_json(&self) -> Value;
}

impl<T: Debug + ?Sized> JsonViaDebug for &Probe<'_, T> {
    fn agentops_json(&self) -> Value {
        Value::String(format!("{:?}", self.0))
    }
}

/// The type name of a value that is neither.
pub trait JsonViaNothing {
    /// The value's type name.
    fn agentops_json(&self) -> Value;
}

impl<T: ?Sized> JsonViaNothing for Probe<'_, T> {
    fn agentops_json(&self) -> Value {
        Value::String(format!("<{}>", std::any::type_name::<T>()))
    }
}

/// The `Display` text of an error.
pub trait TextViaDisplay {
    /// The error's message.
    fn agentops_text(&self) -> String;
}

impl<T: Display + ?Sized> TextViaDisplay for &&Probe<'_, T> {
    fn agentops_text(&self) -> String {
        self.0.to_string()
    }
}

/// The `Debug` text of an error that is not `Display`.
pub trait TextViaDebug {
    /// The error's message.
    fn agentops_text(&self) -> String;
}

impl<T: Debug + ?Sized> TextViaDebug for &Probe<'_, T> {
    fn agentops_text(&self) -> String {
        format!("{:?}", self.0)
    }
}

/// The type name of an error that is neither.
pub trait TextViaNothing {
    /// The error's type name.
    fn agentops_text(&self) -> String;
}

impl<T: ?Sized> TextViaNothing for Probe<'_, T> {
    fn agentops_text(&self) -> String {
        std::any::type_name::<T>().to_owned()
    }
}
