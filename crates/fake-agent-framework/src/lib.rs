//! An agent framework that knows nothing of AgentOps: it reports what it does only through
//! `tracing` spans carrying the OpenTelemetry GenAI semantic-convention fields, as rig and other
//! Rust agent frameworks do. The AgentOps SDK's tests observe it through the `tracing` layer.

use tracing::field::Empty;

/// What one run of the agent did.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The final text.
    pub text: String,
}

/// Answers a question the way an agent loop would: one LLM call that asks for a tool, the tool
/// call, a second LLM call, and a parsing step that logs an error (and recovers).
pub fn answer(question: &str) -> Answer {
    let agent = tracing::info_span!(
        "invoke_agent trip-planner",
        gen_ai.operation.name = "invoke_agent",
        gen_ai.agent.name = "trip-planner",
        question,
    );
    let _agent = agent.enter();

    let plan = chat(
        "gpt-4o-mini",
        42,
        7,
        r#"[{"role":"assistant","content":"","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}]"#,
    );

    let tool = tracing::info_span!(
        "execute_tool get_weather",
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = "get_weather",
        gen_ai.tool.call.arguments = r#"{"city":"Paris"}"#,
        gen_ai.tool.call.result = Empty,
    );
    tool.in_scope(|| tool.record("gen_ai.tool.call.result", "sunny, 21C"));
    drop(tool);

    let reply = chat(
        "gpt-4o-mini",
        60,
        12,
        r#"[{"role":"assistant","content":"It is sunny in Paris."}]"#,
    );

    // A step below the default level: not an event itself, but an error logged inside it still
    // belongs to the agent's run.
    tracing::debug_span!("parse_reply").in_scope(|| {
        tracing::error!(error.type = "ParseError", "the reply was not JSON; using it as text");
    });
    let _ = plan;
    Answer { text: reply }
}

/// An LLM call: the span declares its model up front and records usage and output once the
/// provider has answered.
fn chat(model: &str, input: u64, output: u64, messages: &str) -> String {
    let span = tracing::info_span!(
        "chat",
        gen_ai.operation.name = "chat",
        gen_ai.request.model = model,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.output.messages = Empty,
    );
    let _entered = span.enter();
    span.record("gen_ai.usage.input_tokens", input);
    span.record("gen_ai.usage.output_tokens", output);
    span.record("gen_ai.output.messages", messages);
    messages.to_owned()
}
