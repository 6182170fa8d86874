"""agentops 0.4.x, the rest of what users call:

- the trace auto-started by init() (trace_name, default_tags) with one tool span, left open:
  the client ends it at exit with the end state "Shutdown";
- the legacy (0.3-style) agentops.start_session / agentops.end_session(end_state, end_state_reason);
- a @tool that raises (span status ERROR with an exception event);
- a trace of 300 tool spans
  with update_trace_metadata.

Prints one JSON line (via sys.stdout.write: the client replaces builtins.print).
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
    exporter_endpoint=f"{endpoint}/v1/traces",
    trace_name="auto-trace",
    default_tags=["auto"],
    instrument_llm_calls=False,
    log_level="WARNING",
)
client = agentops.get_client()
deadline = time.monotonic() + 15
while client.get_current_jwt() is None:
    if time.monotonic() > deadline:
        sys.exit("agentops 0.4 never obtained a token from /v3/auth/token")
    time.sleep(0.02)


def session_of(span):
    return str(uuid.UUID(int=span.get_span_context().trace_id))


out = {"auto": {"session_id": session_of(client._init_trace_context.span)}}


@agentops.tool(name="broken-tool")
def broken_tool(x):
    raise ValueError(f"cannot handle {x}")


@agentops.tool(name="bulk-tool")
def bulk_tool(i):
    return i * 2


@agentops.tool(name="auto-tool")
def auto_tool():
    return "inside the auto-started trace"


auto_tool()  # a child of the auto-started trace, current in this thread


def other_traces():
    # A new thread starts with an empty context: no current span, so the traces started here
    # are new traces. (Started in the main thread they would be children of the auto-started
    # trace, in the same trace, since start_trace takes the current context as parent.)
    legacy = agentops.start_session(tags=["legacy-04"])
    out["legacy"] = {"session_id": session_of(legacy.span)}
    try:
        broken_tool("this input")
    except ValueError:
        pass
    agentops.end_session(end_state="Fail", end_state_reason="legacy reason")

    bulk = agentops.start_trace("bulk-trace", tags=["bulk"])
    agentops.update_trace_metadata({"customer": "acme", "attempt": 3})
    for i in range(300):
        bulk_tool(i)
    agentops.end_trace(bulk, end_state="Success")
    out["bulk"] = {"session_id": session_of(bulk.span)}


worker = threading.Thread(target=other_traces)
worker.start()
worker.join()

otel_trace.get_tracer_provider().force_flush()
sys.stdout.write(json.dumps(out) + "\n")
sys.stdout.flush()
