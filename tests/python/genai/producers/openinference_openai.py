"""OpenInference (Arize's `openinference-instrumentation-openai`): `openinference.span.kind=LLM`,
messages as `llm.input_messages.N.message.{role,content,tool_call_id,tool_calls.M.tool_call.*}`
/ `llm.output_messages.N.message.*`, tokens as `llm.token_count.{prompt,completion,total}`, the
request and response as JSON in `input.value` / `output.value`.

    python openinference_openai.py --endpoint URL --api-key KEY --llm-base-url URL/v1 --label L [--fail]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _agent  # noqa: E402


def main():
    args = _agent.parse_args(__doc__.splitlines()[0])
    from openinference.instrumentation.openai import OpenAIInstrumentor

    tracer_provider = _agent.tracer_provider(args)
    OpenAIInstrumentor().instrument(tracer_provider=tracer_provider)
    trace_id = _agent.run(args, tracer_provider)
    _agent.finish(trace_id, tracer_provider)


if __name__ == "__main__":
    main()
