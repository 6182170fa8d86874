"""OpenLLMetry (Traceloop's `opentelemetry-instrumentation-openai` 0.62.x): the newer GenAI
conventions, prompts and answers as JSON span attributes `gen_ai.input.messages` /
`gen_ai.output.messages` (parts form), tokens as `gen_ai.usage.input_tokens` / `output_tokens`.
Content capture is on by default (`TRACELOOP_TRACE_CONTENT`).

    python openllmetry.py --endpoint URL --api-key KEY --llm-base-url URL/v1 --label L [--fail]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _agent  # noqa: E402

os.environ.setdefault("TRACELOOP_TRACE_CONTENT", "true")


def main():
    args = _agent.parse_args(__doc__.splitlines()[0])
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    tracer_provider = _agent.tracer_provider(args)
    OpenAIInstrumentor().instrument(tracer_provider=tracer_provider)
    trace_id = _agent.run(args, tracer_provider)
    _agent.finish(trace_id, tracer_provider)


if __name__ == "__main__":
    main()
