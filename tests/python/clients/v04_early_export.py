"""agentops 0.4.x: a short script whose trace ends before the client has its token.

init() fetches the token from {endpoint}/v3/auth/token in a background thread; end_trace()
exports at once. With AGENTOPS_API_ENDPOINT pointing at a relay that answers slowly (the test
sets one up) and the exporter straight at the server, the export carries no Authorization
header: exactly what the real client does on a slow network. Prints one JSON line.
"""

import json
import os
import sys
import time
import uuid

import agentops

agentops.init(
    api_key=os.environ["AGENTOPS_API_KEY"],
    endpoint=os.environ["AGENTOPS_API_ENDPOINT"],
    exporter_endpoint=os.environ["TEST_EXPORTER_ENDPOINT"],
    auto_start_session=False,
    instrument_llm_calls=False,
    log_level="WARNING",
)
client = agentops.get_client()
ctx = agentops.start_trace("early-trace", tags=["early"])
agentops.end_trace(ctx, end_state="Success")
token_before_export = client.get_current_jwt() is not None

# Then wait for the token, and record a second trace the normal way.
deadline = time.monotonic() + 15
while client.get_current_jwt() is None and time.monotonic() < deadline:
    time.sleep(0.02)
late = agentops.start_trace("after-token-trace", tags=["late"])
agentops.end_trace(late, end_state="Success")

sys.stdout.write(
    json.dumps(
        {
            "early": str(uuid.UUID(int=ctx.span.get_span_context().trace_id)),
            "late": str(uuid.UUID(int=late.span.get_span_context().trace_id)),
            "token_before_export": token_before_export,
            "token_at_end": client.get_current_jwt() is not None,
        }
    )
    + "\n"
)
