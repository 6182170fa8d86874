//! A `tracing` layer: inside a session, `tracing` spans become events, so that any crate that
//! already emits `tracing` spans (agent frameworks, LLM clients) is observed with no code change.
//!
//! - A span carrying OpenTelemetry GenAI fields becomes an **LLM** event (`gen_ai.operation.name`
//!   `chat`, `text_completion`, …, or a `gen_ai.request.model` / `gen_ai.system` /
//!   `gen_ai.provider.name`), with its model, tokens (old and new names: `gen_ai.usage.
//!   input_tokens` or `prompt_tokens`, …), cached and reasoning tokens, and messages
//!   (`gen_ai.input.messages` / `gen_ai.prompt`, `gen_ai.output.messages` / `gen_ai.completion`).
//! - A span with `gen_ai.tool.name` (or `gen_ai.operation.name = "execute_tool"`) becomes a
//!   **tool** event, its `gen_ai.tool.call.arguments` and `.result` as params and returns.
//! - Other spans become **actions**, their fields as params, unless filtered out: by level
//!   ([`AgentopsLayer::with_level`], INFO and above by default), by target
//!   ([`AgentopsLayer::with_targets`]), or all of them ([`AgentopsLayer::without_actions`]).
//! - `tracing::error!` inside such a span becomes an **Error** event, a child of the span's
//!   event with it as trigger.
//!
//! Nesting follows the spans; fields recorded later (`span.record("gen_ai.usage.output_tokens",
//! n)`) are read when the span closes, which is when its event ends. Events recorded by hand
//! inside an entered span become its children. Spans outside any session, and the SDK's own
//! (`agentops` targets), are left alone. The layer never touches the OpenTelemetry current
//! context, so it runs beside a `tracing-opentelemetry` layer without changing its traces.
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//!
//! tracing_subscriber::registry().with(agentops::tracing_layer()).init();
//! agentops::init(agentops::Config::from_env()?)?;
//! let span = tracing::info_span!("chat", gen_ai.request.model = "gpt-4o-mini",
//!     gen_ai.usage.input_tokens = tracing::field::Empty);
//! span.record("gen_ai.usage.input_tokens", 12);
//! # Ok::<(), agentops::Error>(())
//! ```

use std::any::TypeId;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::trace::{TraceContextExt as _, TraceId};
use opentelemetry::Context;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Level, Metadata, Subscriber};
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::session::current::next_entry;
use crate::{Event, EventSpan, Session};

/// A layer that records `tracing` spans as events of the current session.
pub fn tracing_layer<S>() -> AgentopsLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    AgentopsLayer {
        level: Level::INFO,
        targets: None,
        actions: true,
        find_event: FindEvent(find_event::<S>),
        _subscriber: PhantomData,
    }
}

/// See [`tracing_layer`].
pub struct AgentopsLayer<S> {
    level: Level,
    targets: Option<Vec<String>>,
    actions: bool,
    find_event: FindEvent,
    _subscriber: PhantomData<fn(S)>,
}

impl<S> std::fmt::Debug for AgentopsLayer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentopsLayer")
            .field("level", &self.level)
            .field("targets", &self.targets)
            .field("actions", &self.actions)
            .finish()
    }
}

impl<S> AgentopsLayer<S> {
    /// Spans less severe than `level` do not become actions (GenAI spans always become events).
    /// The default is INFO.
    pub fn with_level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// Only spans whose target starts with one of these become actions (GenAI spans always
    /// become events).
    pub fn with_targets<I, T>(mut self, targets: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.targets = Some(targets.into_iter().map(Into::into).collect());
        self
    }

    /// Only GenAI spans (LLM calls and tools) become events; other spans are left alone.
    pub fn without_actions(mut self) -> Self {
        self.actions = false;
        self
    }

    fn kind_of(&self, metadata: &Metadata<'_>) -> Option<Candidate> {
        if metadata.target().starts_with("agentops") {
            return None;
        }
        if metadata
            .fields()
            .iter()
            .any(|field| field.name().starts_with("gen_ai."))
        {
            return Some(Candidate::GenAi);
        }
        let wanted = self.actions
            && *metadata.level() <= self.level
            && self.targets.as_ref().is_none_or(|targets| {
                targets
                    .iter()
                    .any(|target| metadata.target().starts_with(target.as_str()))
            });
        wanted.then_some(Candidate::Action)
    }
}

/// What a span may become, from its metadata alone.
#[derive(Clone, Copy)]
enum Candidate {
    GenAi,
    Action,
}

/// What a span became.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Llm,
    Tool,
    Action,
}

/// What the layer keeps in a span's extensions.
struct Recorded {
    kind: Kind,
    event: Option<EventSpan>,
    fields: Map<String, Value>,
    /// When the span was last entered (see [`Entered`]).
    entered: AtomicU64,
}

/// Finds the event of the nearest recorded span at or above a span, for
/// [`current_event`]; reached through `Dispatch::downcast_ref`, as tracing-opentelemetry does.
#[derive(Clone, Copy)]
struct FindEvent(fn(&Dispatch, &Id) -> Option<(Context, u64)>);

fn find_event<S>(dispatch: &Dispatch, id: &Id) -> Option<(Context, u64)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let subscriber = dispatch.downcast_ref::<S>()?;
    let span = subscriber.span(id)?;
    span.scope().find_map(|span| {
        let extensions = span.extensions();
        let recorded = extensions.get::<Recorded>()?;
        let event = recorded.event.as_ref()?;
        Some((event.context(), recorded.entered.load(Ordering::Relaxed)))
    })
}

/// The event of the current `tracing` span (or its nearest recorded ancestor) if it belongs to
/// the session of `trace_id`, and when it was entered.
pub(crate) fn current_event(trace_id: TraceId) -> Option<(Context, u64)> {
    tracing::Span::current()
        .with_subscriber(|(id, dispatch)| {
            let find = dispatch.downcast_ref::<FindEvent>()?;
            (find.0)(dispatch, id)
        })
        .flatten()
        .filter(|(cx, _)| cx.span().span_context().trace_id() == trace_id)
}

impl<S> Layer<S> for AgentopsLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(candidate) = self.kind_of(attrs.metadata()) else {
            return;
        };
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let kind = match candidate {
            Candidate::GenAi => classify(&fields.0),
            Candidate::Action => Kind::Action,
        };
        if kind == Kind::Action && matches!(candidate, Candidate::GenAi) && !self.actions {
            return;
        }
        // The session and parent: the nearest recorded ancestor's or the entered event's,
        // whichever was entered last; else the current session, at its root.
        let ancestor = span.parent().and_then(|parent| {
            parent.scope().find_map(|ancestor| {
                let extensions = ancestor.extensions();
                let recorded = extensions.get::<Recorded>()?;
                let event = recorded.event.as_ref()?;
                Some((
                    event.session().clone(),
                    event.context(),
                    recorded.entered.load(Ordering::Relaxed),
                ))
            })
        });
        let entered = crate::session::current::entered_event();
        let parent = match (ancestor, entered) {
            (Some(a), Some(e)) => Some(if e.2 > a.2 { e } else { a }),
            (a, e) => a.or(e),
        };
        let (session, parent_cx) = match parent {
            Some((session, cx, _)) => (session, Some(cx)),
            None => match crate::global::session() {
                Ok(session) => (session, None),
                Err(_) => return,
            },
        };
        let event = start_event(
            &session,
            kind,
            attrs.metadata().name(),
            &fields.0,
            parent_cx,
        );
        span.extensions_mut().insert(Recorded {
            kind,
            event,
            fields: fields.0,
            entered: AtomicU64::new(0),
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if let Some(recorded) = extensions.get_mut::<Recorded>() {
            let mut fields = Fields(std::mem::take(&mut recorded.fields));
            values.record(&mut fields);
            recorded.fields = fields.0;
        }
    }

    fn on_enter(&self, id: &Id, ctx: LayerContext<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(recorded) = span.extensions().get::<Recorded>() {
                recorded.entered.store(next_entry(), Ordering::Relaxed);
            }
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: LayerContext<'_, S>) {
        let metadata = event.metadata();
        if *metadata.level() != Level::ERROR || metadata.target().starts_with("agentops") {
            return;
        }
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let Some((session, parent_cx, trigger)) = span.scope().find_map(|span| {
            let extensions = span.extensions();
            let event = extensions.get::<Recorded>()?.event.as_ref()?;
            Some((event.session().clone(), event.context(), event.id()))
        }) else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let error_type = ["error.type", "exception.type"]
            .iter()
            .find_map(|key| fields.0.get(*key).and_then(Value::as_str))
            .unwrap_or("error")
            .to_owned();
        let details = fields
            .0
            .get("message")
            .or_else(|| fields.0.get("exception.message"))
            .and_then(Value::as_str)
            .unwrap_or(metadata.name())
            .to_owned();
        let mut error = Event::error(error_type)
            .details(details)
            .trigger(trigger)
            .logs(format!("{} at {}", metadata.target(), location(metadata)));
        if let Some(stack) = fields.0.get("exception.stacktrace").and_then(Value::as_str) {
            error = error.exception(stack);
        }
        let placement = session.placement_under(Some(parent_cx));
        let _ = session.start_event_at(error, placement).map(EventSpan::end);
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(recorded) = span.extensions_mut().remove::<Recorded>() else {
            return;
        };
        if let Some(event) = recorded.event {
            let (kind, fields) = (recorded.kind, recorded.fields);
            event.end_with(|event| complete(event, kind, &fields));
        }
    }

    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == TypeId::of::<FindEvent>() {
            Some(&self.find_event as *const FindEvent as *const ())
        } else {
            None
        }
    }
}

fn location(metadata: &Metadata<'_>) -> String {
    match (metadata.file(), metadata.line()) {
        (Some(file), Some(line)) => format!("{file}:{line}"),
        _ => metadata.module_path().unwrap_or_default().to_owned(),
    }
}

/// An LLM call or a tool call, from the GenAI fields known when the span starts.
fn classify(fields: &Map<String, Value>) -> Kind {
    let text = |key: &str| fields.get(key).and_then(Value::as_str);
    let operation = text("gen_ai.operation.name");
    if operation == Some("execute_tool") || fields.contains_key("gen_ai.tool.name") {
        return Kind::Tool;
    }
    let llm_operation = matches!(
        operation,
        Some("chat" | "text_completion" | "generate_content" | "completion" | "embeddings")
    );
    let model_known = [
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.system",
        "gen_ai.provider.name",
    ]
    .iter()
    .any(|key| fields.contains_key(*key));
    if llm_operation || model_known {
        Kind::Llm
    } else {
        Kind::Action
    }
}

fn start_event(
    session: &Session,
    kind: Kind,
    span_name: &str,
    fields: &Map<String, Value>,
    parent: Option<Context>,
) -> Option<EventSpan> {
    let text = |key: &str| fields.get(key).and_then(Value::as_str);
    let event = match kind {
        Kind::Llm => Event::llm(
            text("gen_ai.request.model")
                .or(text("gen_ai.response.model"))
                .unwrap_or(span_name),
        ),
        Kind::Tool => Event::tool(text("gen_ai.tool.name").unwrap_or(span_name)),
        Kind::Action => Event::action(span_name),
    };
    let placement = session.placement_under(parent);
    session.start_event_at(event, placement).ok()
}

/// Values that may arrive as JSON text.
fn json_or_text(value: &Value) -> Value {
    match value {
        Value::String(text) => serde_json::from_str(text).unwrap_or_else(|_| value.clone()),
        other => other.clone(),
    }
}

/// The event with what the span's fields said by the time it closed.
fn complete(mut event: Event, kind: Kind, fields: &Map<String, Value>) -> Event {
    let first = |keys: &[&str]| keys.iter().find_map(|key| fields.get(*key));
    let count = |keys: &[&str]| first(keys).and_then(Value::as_u64);
    let mut consumed: Vec<&str> = Vec::new();
    match kind {
        Kind::Llm => {
            if let Some(model) =
                first(&["gen_ai.response.model", "gen_ai.request.model"]).and_then(Value::as_str)
            {
                event = event.with_field("model", model);
            }
            let input = count(&["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"]);
            let output = count(&[
                "gen_ai.usage.output_tokens",
                "gen_ai.usage.completion_tokens",
            ]);
            if input.is_some() || output.is_some() {
                event = event.tokens(input.unwrap_or(0), output.unwrap_or(0));
            }
            if let Some(cached) = count(&[
                "gen_ai.usage.cache_read.input_tokens",
                "gen_ai.usage.cache_read_input_tokens",
                "gen_ai.usage.cached_tokens",
            ]) {
                event = event.cached_tokens(cached);
            }
            if let Some(reasoning) = count(&["gen_ai.usage.reasoning_tokens"]) {
                event = event.reasoning_tokens(reasoning);
            }
            if let Some(prompt) = first(&["gen_ai.input.messages", "gen_ai.prompt"]) {
                event = event.prompt_json(json_or_text(prompt));
            }
            if let Some(completion) = first(&["gen_ai.output.messages", "gen_ai.completion"]) {
                event = event.completion_json(json_or_text(completion));
            }
            consumed.extend(["gen_ai.input.messages", "gen_ai.prompt"]);
            consumed.extend(["gen_ai.output.messages", "gen_ai.completion"]);
        }
        Kind::Tool => {
            if let Some(arguments) = fields.get("gen_ai.tool.call.arguments") {
                event = event.params(json_or_text(arguments));
            }
            if let Some(result) = fields.get("gen_ai.tool.call.result") {
                event = event.returns(json_or_text(result));
            }
            consumed.extend(["gen_ai.tool.call.arguments", "gen_ai.tool.call.result"]);
        }
        Kind::Action => {
            let params: Map<String, Value> = fields
                .iter()
                .filter(|(key, _)| key.as_str() != "message")
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            if !params.is_empty() {
                event = event.params(Value::Object(params));
            }
            return event;
        }
    }
    for (key, value) in fields {
        if consumed.contains(&key.as_str()) {
            continue;
        }
        let value: opentelemetry::Value = match value {
            Value::Bool(b) => (*b).into(),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => i.into(),
                (None, Some(f)) => f.into(),
                _ => n.to_string().into(),
            },
            Value::String(s) => s.clone().into(),
            other => other.to_string().into(),
        };
        event = event.attribute(key.clone(), value);
    }
    event
}

/// A span's or event's fields as JSON.
#[derive(Default)]
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::Bool(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_string()));
    }
}
