"""agentops 0.4.x: a script whose first spans are exported before the client has its token.

init() fetches the token from {endpoint}/v3/auth/token in a background thread; the exporter
sends whatever ended meanwhile without an Authorization header. With AGENTOPS_API_ENDPOINT
pointing at a relay that answers slowly (the test sets one up) and the exporter straight at
the server, that is exactly what the real client does on a slow network:

- "held-trace" starts, a @tool inside it ends and is exported (flushed) before the token; the
  trace ends after the token, so its root span goes out with credentials;
- "early-trace" starts and ends before the token: none of its spans ever has credentials;
- "after-token-trace" is recorded the normal way.

Prints one JSON line.
"""

import json
import os
import sys
import threading
import time
import uuid

import agentops
from agentops.sdk.decorators import tool
from opentelemetry import trace as otel_trace

agentops.init(
    api_key=os.environ["AGENTOPS_API_KEY"],
    endpoint=os.environ["AGENTOPS_API_ENDPOINT"],
    exporter_endpoint=os.environ["TEST_EXPORTER_ENDPOINT"],
    auto_start_session=False,
    instrument_llm_calls=False,
    log_level="WARNING",
)
client = agentops.get_client()


@tool
def lookup(city):
    return f"weather in {city}: sunny"


def start_held_trace(out):
    # In a thread of its own, so that the traces started below are not its children.
    out["ctx"] = agentops.start_trace("held-trace", tags=["held"])
    lookup("Paris")
    otel_trace.get_tracer_provider().force_flush()
    out["tool_exported_without_token"] = client.get_current_jwt() is None


started = {}
thread = threading.Thread(target=start_held_trace, args=(started,))
thread.start()
thread.join()
held, tool_exported_without_token = started["ctx"], started["tool_exported_without_token"]
ctx = agentops.start_trace("early-trace", tags=["early"])
agentops.end_trace(ctx, end_state="Success")
token_before_export = client.get_current_jwt() is not None

# Then wait for the token, and record a second trace the normal way.
deadline = time.monotonic() + 15
while client.get_current_jwt() is None and time.monotonic() < deadline:
    time.sleep(0.02)
late = agentops.start_trace("after-token-trace", tags=["late"])
agentops.end_trace(late, end_state="Success")
agentops.end_trace(held, end_state="Success")

sys.stdout.write(
    json.dumps(
        {
            "held": str(uuid.UUID(int=held.span.get_span_context().trace_id)),
            "tool_exported_without_token": tool_exported_without_token,
            "early": str(uuid.UUID(int=ctx.span.get_span_context().trace_id)),
            "late": str(uuid.UUID(int=late.span.get_span_context().trace_id)),
            "token_before_export": token_before_export,
            "token_at_end": client.get_current_jwt() is not None,
        }
    )
    + "\n"
)
