"""OpenLLMetry of the older generation (`opentelemetry-instrumentation-openai` 0.47.x): prompts
and answers as indexed span attributes `gen_ai.prompt.N.{role,content,tool_call_id,tool_calls.M.*}`
/ `gen_ai.completion.N.{role,content,finish_reason,tool_calls.M.*}` (`use_legacy_attributes`,
its default), tokens as `gen_ai.usage.prompt_tokens` / `completion_tokens`.

`--events` sets `use_legacy_attributes=False` instead: the messages are then GenAI events
(`gen_ai.{system,user,assistant,tool}.message`, `gen_ai.choice`) emitted through the (since
removed) OpenTelemetry Events API, which the SDK sends as OTLP log records (`/v1/logs`), their
content in the body.

    python openllmetry_legacy.py --endpoint URL --api-key KEY --llm-base-url URL/v1 --label L [--fail] [--events]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _agent  # noqa: E402

os.environ.setdefault("TRACELOOP_TRACE_CONTENT", "true")
EVENTS = "--events" in sys.argv
if EVENTS:
    sys.argv.remove("--events")


def main():
    args = _agent.parse_args(__doc__.splitlines()[0])
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    tracer_provider = _agent.tracer_provider(args)
    if EVENTS:
        from opentelemetry.sdk._events import EventLoggerProvider

        logger_provider = _agent.logger_provider(args)
        OpenAIInstrumentor(use_legacy_attributes=False).instrument(
            tracer_provider=tracer_provider, event_logger_provider=EventLoggerProvider(logger_provider)
        )
    else:
        logger_provider = None
        OpenAIInstrumentor(use_legacy_attributes=True).instrument(tracer_provider=tracer_provider)
    trace_id = _agent.run(args, tracer_provider)
    _agent.finish(trace_id, tracer_provider, logger_provider)


if __name__ == "__main__":
    main()
