"""agentops 0.4.x: traces (sessions) over /v3/auth/token + OTLP/HTTP.

- three traces open at once, each in its own thread (start_trace ... end_trace), ending
  Success, Fail and Indeterminate; inside each: an @agent whose @operation calls a @tool, and
  an LLM span carrying gen_ai.* attributes made with the OpenTelemetry tracer;
- a function decorated with @trace (ends Success) and one with the legacy @session that
  raises (the client ends it Indeterminate);
- print() output captured by the client and uploaded to /v4/logs/upload/ when the first trace
  of the process ends;
- traces ended with the TraceState enum and with the `with start_trace(...)` block.

Prints one JSON line (via sys.stdout.write: the client replaces builtins.print) with the
session (trace) ids as UUIDs and the span ids in hex.
"""

import json
import os
import sys
import threading
import time
import uuid

import agentops
from opentelemetry import trace as otel_trace

endpoint = os.environ["AGENTOPS_API_ENDPOINT"]
agentops.init(
    api_key=os.environ["AGENTOPS_API_KEY"],
    endpoint=endpoint,
    # another server may take the spans (tests/python/test_replicas.py sends them to a second
    # replica of the one that issues the token)
    exporter_endpoint=os.environ.get("AGENTOPS_EXPORTER_ENDPOINT", f"{endpoint}/v1/traces"),
    auto_start_session=False,
    instrument_llm_calls=False,
    log_level="WARNING",
)

# The client fetches its token in the background; spans exported before it arrives carry no
# Authorization header. Wait for it so that the run is deterministic.
client = agentops.get_client()
deadline = time.monotonic() + 15
while client.get_current_jwt() is None:
    if time.monotonic() > deadline:
        sys.exit("agentops 0.4 never obtained a token from /v3/auth/token")
    time.sleep(0.02)

out = {}
llm_tracer = otel_trace.get_tracer("tests.python.fake_llm")


def hex_span(span):
    return format(span.get_span_context().span_id, "016x")


def session_of(span):
    return str(uuid.UUID(int=span.get_span_context().trace_id))


def fake_llm_call(question, prompt_tokens, completion_tokens):
    """What an instrumented OpenAI call records, without the network."""
    with llm_tracer.start_as_current_span("openai.chat.completion") as span:
        span.set_attribute("gen_ai.system", "OpenAI")
        span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
        span.set_attribute("gen_ai.response.model", "gpt-4o-mini")
        span.set_attribute("gen_ai.prompt.0.role", "system")
        span.set_attribute("gen_ai.prompt.0.content", "be brief")
        span.set_attribute("gen_ai.prompt.1.role", "user")
        span.set_attribute("gen_ai.prompt.1.content", question)
        span.set_attribute("gen_ai.completion.0.role", "assistant")
        span.set_attribute("gen_ai.completion.0.content", f"answer to {question}")
        span.set_attribute("gen_ai.usage.prompt_tokens", prompt_tokens)
        span.set_attribute("gen_ai.usage.completion_tokens", completion_tokens)
        span.set_attribute("gen_ai.usage.total_tokens", prompt_tokens + completion_tokens)
        return hex_span(span)


@agentops.tool(name="calculator")
def calculator(expr):
    return str(eval(expr, {"__builtins__": {}}))  # a fixed, trusted expression


@agentops.agent(name="ResearchAgent")
class ResearchAgent:
    @agentops.operation(name="research")
    def research(self, topic, n):
        calculator(f"{n}*7")
        return f"findings about {topic}"


# The client uploads the captured print() output when the first span it saw end (the first
# trace's root), tagged with that trace's id: run one trace first, alone.
logged = agentops.start_trace("logged-trace", tags=["logs"])
print("hello from the logged trace")
agentops.end_trace(logged, end_state="Success")
out["logged"] = {"session_id": session_of(logged.span)}

labels = {"success": "Success", "fail": "Fail", "indeterminate": "Indeterminate"}
barrier = threading.Barrier(len(labels))


def run_trace(n, label, end_state):
    ctx = agentops.start_trace(f"{label}-trace", tags=["v04", label])
    barrier.wait(timeout=10)  # all three traces are open at once
    llm = fake_llm_call(f"{label} question", 100 * n, 10 * n)
    ResearchAgent().research(label, n)
    out[label] = {
        "session_id": session_of(ctx.span),
        "root_span": hex_span(ctx.span),
        "llm_span": llm,
    }
    # Export the children now: the server sees them before their session span, which comes
    # in a later request with the session's name, end state and tags.
    otel_trace.get_tracer_provider().force_flush()
    barrier.wait(timeout=10)
    agentops.end_trace(ctx, end_state=end_state)


threads = [
    threading.Thread(target=run_trace, args=(n, label, state))
    for n, (label, state) in enumerate(labels.items(), start=1)
]
for t in threads:
    t.start()
for t in threads:
    t.join()


@agentops.trace(name="decorated-trace", tags=["decorated"])
def decorated(topic):
    print(f"hello from the decorated trace about {topic}")
    out["decorated"] = {"session_id": session_of(otel_trace.get_current_span())}
    return f"done with {topic}"


decorated("otel ✓")


@agentops.session
def legacy_session_that_fails():
    out["legacy"] = {"session_id": session_of(otel_trace.get_current_span())}
    raise RuntimeError("the legacy session failed")


try:
    legacy_session_that_fails()
except RuntimeError:
    pass

# End states given as the client's enum, by default, and by the context manager.
enum_ctx = agentops.start_trace("enum-end-trace")
agentops.end_trace(enum_ctx, end_state=agentops.TraceState.ERROR)
out["enum_error"] = {"session_id": session_of(enum_ctx.span)}
default_ctx = agentops.start_trace("default-end-trace")
agentops.end_trace(default_ctx)
out["default_end"] = {"session_id": session_of(default_ctx.span)}
try:
    with agentops.start_trace("with-block-trace") as with_ctx:
        raise KeyError("inside the with block")
except KeyError:
    pass
out["with_error"] = {"session_id": session_of(with_ctx.span)}

otel_trace.get_tracer_provider().force_flush()
sys.stdout.write(json.dumps(out) + "\n")
sys.stdout.flush()
