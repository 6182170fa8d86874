"""The OpenTelemetry project's own `opentelemetry-instrumentation-openai-v2` (2.x, pre-release).

Default (semantic conventions 1.30, the "events" generation): a `chat <model>` span with
`gen_ai.*` request/response attributes and tokens, and the messages as OTLP log records tied to
that span: `gen_ai.system.message`, `gen_ai.user.message`, `gen_ai.assistant.message`,
`gen_ai.tool.message` (one per prompt message) and `gen_ai.choice` (one per answer), their
content in the log body. Content is captured only with
`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` (set here unless set already), and
needs a LoggerProvider with an OTLP log exporter (`/v1/logs`).

`--latest` opts into the newest conventions instead
(`OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`, content `span_only`): the messages
as `gen_ai.input.messages` / `gen_ai.output.messages` span attributes.

    python otel_v2.py --endpoint URL --api-key KEY --llm-base-url URL/v1 --label L [--fail] [--latest]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _agent  # noqa: E402

LATEST = "--latest" in sys.argv
if LATEST:
    sys.argv.remove("--latest")
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
else:
    os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")


def main():
    args = _agent.parse_args(__doc__.splitlines()[0])
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    tracer_provider = _agent.tracer_provider(args)
    logger_provider = _agent.logger_provider(args)
    OpenAIInstrumentor().instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)
    trace_id = _agent.run(args, tracer_provider)
    _agent.finish(trace_id, tracer_provider, logger_provider)


if __name__ == "__main__":
    main()
