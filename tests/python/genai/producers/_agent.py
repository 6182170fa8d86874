"""The small trip-planner agent every producer script runs, with the OpenTelemetry SDK set up
as an application would set it up: OTLP/HTTP exporters to our server (`/v1/traces`, and
`/v1/logs` for producers that log GenAI events), the API key in `X-Agentops-Api-Key`, and the
resource `service.name=trip-planner`.

The agent (the root span `trip-planner-<label>`): a chat completion with the system message
"You plan trips.", the question "What is the weather in Paris?" and the tool `get_weather`; the
model asks for the tool; an `execute_tool get_weather` span runs it (what an agent framework
records: the instrumentation packages record only the LLM calls); a second chat completion with
the tool's result gives the answer. `--fail` makes the agent raise after that answer, so the
root span records the exception and ends with an ERROR status. `--stream` streams both answers
(`stream_options={"include_usage": True}`, as an application must ask for usage in a stream).

Only the standard library, openai and the OpenTelemetry SDK are used here; each producer script
adds its own instrumentation package (each in its own venv). Prints `TRACE <32 hex>` last.
"""

import argparse
import json
import sys

SYSTEM = "You plan trips."
QUESTION = "What is the weather in Paris?"
MODEL = "gpt-4o-mini"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "The city's name."}},
                "required": ["city"],
            },
        },
    }
]
FAILURE = "the booking service is down"


def parse_args(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--endpoint", required=True, help="the AgentOps server's base URL")
    parser.add_argument("--api-key", required=True, help="sent as X-Agentops-Api-Key")
    parser.add_argument("--llm-base-url", required=True, help="the (fake) OpenAI API, e.g. http://127.0.0.1:N/v1")
    parser.add_argument("--label", required=True, help="the root span is named trip-planner-<label>")
    parser.add_argument("--fail", action="store_true", help="the agent fails: the root span ends with an error")
    parser.add_argument("--stream", action="store_true", help="streamed chat completions (usage in the last chunk)")
    return parser.parse_args()


def resource():
    from opentelemetry.sdk.resources import Resource

    return Resource.create({"service.name": "trip-planner", "service.version": "1.0.0"})


def tracer_provider(args):
    """A TracerProvider exporting to `args.endpoint`/v1/traces (set as the global one)."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=resource())
    exporter = OTLPSpanExporter(
        endpoint=f"{args.endpoint.rstrip('/')}/v1/traces",
        headers={"X-Agentops-Api-Key": args.api_key},
        timeout=10,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    trace.set_tracer_provider(provider)
    return provider


def logger_provider(args):
    """A LoggerProvider exporting to `args.endpoint`/v1/logs (set as the global one)."""
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    provider = LoggerProvider(resource=resource())
    exporter = OTLPLogExporter(
        endpoint=f"{args.endpoint.rstrip('/')}/v1/logs",
        headers={"X-Agentops-Api-Key": args.api_key},
        timeout=10,
    )
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter, schedule_delay_millis=200))
    set_logger_provider(provider)
    return provider


def get_weather(city):
    """The tool: a fixed forecast."""
    return json.dumps({"city": city, "forecast": "sunny", "temperature_c": 22})


class _Call:
    """A tool call as a streamed answer builds it."""

    def __init__(self):
        self.id, self.name, self.arguments = None, "", ""

    @property
    def function(self):
        return self


class _Answer:
    """The parts of a chat completion `run` reads, from a response or a stream of chunks."""

    def __init__(self, response=None, stream=None):
        self.content, self.finish_reason, self.tool_calls = None, None, []
        if response is not None:
            choice = response.choices[0]
            self.content, self.finish_reason = choice.message.content, choice.finish_reason
            self.tool_calls = list(choice.message.tool_calls or [])
            return
        calls = {}
        for chunk in stream:
            for choice in chunk.choices:
                delta = choice.delta
                if delta.content:
                    self.content = (self.content or "") + delta.content
                for d in delta.tool_calls or []:
                    call = calls.setdefault(d.index, _Call())
                    call.id = d.id or call.id
                    if d.function is not None:
                        call.name += d.function.name or ""
                        call.arguments += d.function.arguments or ""
                if choice.finish_reason:
                    self.finish_reason = choice.finish_reason
        self.tool_calls = [calls[i] for i in sorted(calls)]


def _chat(client, args, messages):
    if not args.stream:
        return _Answer(client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, temperature=0))
    stream = client.chat.completions.create(
        model=MODEL, messages=messages, tools=TOOLS, temperature=0, stream=True, stream_options={"include_usage": True}
    )
    return _Answer(stream=stream)


def run(args, tracer_provider, label_attributes=None):
    """Runs the agent under a root span; returns its trace id (32 hex digits)."""
    import openai
    from opentelemetry.trace import SpanKind

    client = openai.OpenAI(base_url=args.llm_base_url, api_key="sk-fake-not-a-real-key", max_retries=0, timeout=20)
    tracer = tracer_provider.get_tracer("trip_planner.agent", "1.0.0")
    root_attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "trip_planner",
        **(label_attributes or {}),
    }
    trace_id = None
    try:
        with tracer.start_as_current_span(
            f"trip-planner-{args.label}", kind=SpanKind.INTERNAL, attributes=root_attributes
        ) as root:
            trace_id = format(root.get_span_context().trace_id, "032x")
            messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
            first = _chat(client, args, messages)
            if first.finish_reason != "tool_calls" or not first.tool_calls:
                raise RuntimeError(f"the model did not ask for the tool: {vars(first)}")
            call = first.tool_calls[0]
            with tracer.start_as_current_span(
                f"execute_tool {call.function.name}",
                kind=SpanKind.INTERNAL,
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": call.function.name,
                    "gen_ai.tool.call.id": call.id,
                    "gen_ai.tool.type": "function",
                },
            ) as tool_span:
                result = get_weather(**json.loads(call.function.arguments))
                tool_span.set_attribute("gen_ai.tool.call.result", result)
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.function.name, "arguments": call.function.arguments},
                        }
                    ],
                }
            )
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
            answer = _chat(client, args, messages).content
            if args.fail:
                raise RuntimeError(FAILURE)
            print(f"ANSWER {answer}", flush=True)
    except RuntimeError as e:
        if not args.fail or str(e) != FAILURE:
            raise
        # the SDK recorded the exception on the root span and set its status to ERROR
        print(f"FAILED {e}", flush=True)
    return trace_id


def finish(trace_id, *providers):
    """Flushes and shuts the providers down, then prints the trace id."""
    for provider in providers:
        if provider is not None and not provider.force_flush(10_000):
            sys.exit(f"{type(provider).__name__}.force_flush timed out")
    for provider in providers:
        if provider is not None:
            provider.shutdown()
    print(f"TRACE {trace_id}", flush=True)
