"""A Python HTTP service instrumented with plain OpenTelemetry (no AgentOps code): the W3C
`traceparent` and `baggage` of each request are extracted with OpenTelemetry's default
propagators, the baggage's entries are copied onto its spans (BaggageSpanProcessor, from
opentelemetry-processor-baggage), and the spans go over OTLP/HTTP to the AgentOps server with
the API key header. Each POST /summarise makes a SERVER span and, inside it, a chat span with
GenAI attributes.

Env: AGENTOPS_API_ENDPOINT, AGENTOPS_API_KEY. Prints `listening on http://127.0.0.1:PORT`, then
serves until killed.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

endpoint = os.environ["AGENTOPS_API_ENDPOINT"]
provider = TracerProvider(resource=Resource.create({"service.name": "summary-service"}))
provider.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
provider.add_span_processor(
    SimpleSpanProcessor(
        OTLPSpanExporter(
            endpoint=f"{endpoint}/v1/traces",
            headers={"X-Agentops-Api-Key": os.environ["AGENTOPS_API_KEY"]},
        )
    )
)
tracer = provider.get_tracer("summary-service")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        forecast = json.loads(self.rfile.read(length) or b"null")
        # As OpenTelemetry's HTTP server instrumentations do: the request's context (trace and
        # baggage) is the current one while the request is served.
        token = context.attach(propagate.extract(self.headers))
        try:
            with tracer.start_as_current_span("summarise", kind=trace.SpanKind.SERVER):
                with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
                    chat.set_attribute("gen_ai.operation.name", "chat")
                    chat.set_attribute("gen_ai.request.model", "gpt-4o-mini")
                    chat.set_attribute("gen_ai.usage.input_tokens", 40)
                    chat.set_attribute("gen_ai.usage.output_tokens", 8)
                    summary = f"Pack sunglasses: {forecast}"
        finally:
            context.detach(token)
        body = json.dumps(summary).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
sys.stdout.write(f"listening on http://127.0.0.1:{server.server_address[1]}\n")
sys.stdout.flush()
server.serve_forever()
