"""agentops 0.4.x instrumenting the real openai package: a chat completion inside an @agent,
made to the test's local stub of the OpenAI API (OPENAI_BASE_URL); the client's OpenAI
instrumentation records it as an `openai.chat.completion` span with gen_ai.* attributes.
Prints one JSON line (via sys.stdout.write: the client replaces builtins.print).
"""

import json
import os
import sys
import time
import uuid

import agentops

endpoint = os.environ["AGENTOPS_API_ENDPOINT"]
agentops.init(
    api_key=os.environ["AGENTOPS_API_KEY"],
    endpoint=endpoint,
    exporter_endpoint=f"{endpoint}/v1/traces",
    auto_start_session=False,
    instrument_llm_calls=True,
    log_level="ERROR",
)
client = agentops.get_client()
deadline = time.monotonic() + 15
while client.get_current_jwt() is None:
    if time.monotonic() > deadline:
        sys.exit("agentops 0.4 never obtained a token from /v3/auth/token")
    time.sleep(0.02)

import openai  # noqa: E402  (imported after init, as the agentops docs show)


@agentops.agent(name="Greeter")
class Greeter:
    def __init__(self):
        self.llm = openai.OpenAI()  # OPENAI_BASE_URL and OPENAI_API_KEY from the environment

    @agentops.operation(name="greet")
    def greet(self, who):
        response = self.llm.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": f"Say hello to {who}"}],
            temperature=0.2,
            max_tokens=20,
        )
        return response.choices[0].message.content


ctx = agentops.start_trace("openai-trace", tags=["openai"])
answer = Greeter().greet("otel")
agentops.end_trace(ctx, end_state="Success")

from opentelemetry import trace as otel_trace  # noqa: E402

otel_trace.get_tracer_provider().force_flush()
sys.stdout.write(
    json.dumps({"session_id": str(uuid.UUID(int=ctx.span.get_span_context().trace_id)), "answer": answer}) + "\n"
)
