"""A deterministic stand-in for the OpenAI chat completions API, for the GenAI producer suite.

`POST /v1/chat/completions` (also `/chat/completions`), non-streaming, or streaming
(`"stream": true`, server-sent events with usage in the last chunk):

- a conversation without a `tool` message yet: the assistant asks for the tool
  `get_weather` (`{"city":"Paris"}`, call id `call_weather_1`), finish reason `tool_calls`,
  usage 31 prompt + 9 completion tokens;
- a conversation holding the tool's result: the answer text "It is sunny in Paris, 22 °C.",
  finish reason `stop`, usage 48 prompt + 12 completion tokens.

The model is answered as `gpt-4o-mini-2024-07-18` (a dated snapshot the server's price table
prices as `gpt-4o-mini`). Nothing leaves 127.0.0.1.

Run as a program: `python fake_llm.py --port 0` prints `LISTENING <port>` once it listens and
serves until killed. Import: `start()` returns `(server, port)`; `server.shutdown()` stops it.
"""

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "gpt-4o-mini-2024-07-18"
CALL_ID = "call_weather_1"
TOOL_NAME = "get_weather"
TOOL_ARGUMENTS = '{"city":"Paris"}'
ANSWER = "It is sunny in Paris, 22 °C."
# (prompt, completion) tokens of the first call (asks for the tool) and the second (answers)
USAGE_TOOL_CALL = (31, 9)
USAGE_ANSWER = (48, 12)
TOTAL_INPUT_TOKENS = USAGE_TOOL_CALL[0] + USAGE_ANSWER[0]
TOTAL_OUTPUT_TOKENS = USAGE_TOOL_CALL[1] + USAGE_ANSWER[1]
TOTAL_TOKENS = TOTAL_INPUT_TOKENS + TOTAL_OUTPUT_TOKENS


def usage(prompt, completion):
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def answer_for(request, serial):
    """The chat completion for `request` (a parsed request body)."""
    messages = request.get("messages") or []
    has_tool_result = any(isinstance(m, dict) and m.get("role") == "tool" for m in messages)
    if has_tool_result:
        message = {"role": "assistant", "content": ANSWER, "refusal": None}
        finish, tokens = "stop", USAGE_ANSWER
    else:
        message = {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [
                {
                    "id": CALL_ID,
                    "type": "function",
                    "function": {"name": TOOL_NAME, "arguments": TOOL_ARGUMENTS},
                }
            ],
        }
        finish, tokens = "tool_calls", USAGE_TOOL_CALL
    return {
        "id": f"chatcmpl-fake-{serial}",
        "object": "chat.completion",
        "created": 1795311032,
        "model": MODEL,
        "system_fingerprint": "fp_fake",
        "service_tier": "default",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": usage(*tokens),
    }


def stream_chunks(completion):
    """The chunks of `completion` as the streaming API sends them (usage last)."""
    base = {k: completion[k] for k in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"
    choice = completion["choices"][0]
    message = choice["message"]
    delta = {"role": "assistant", "content": "" if message.get("content") else None}
    yield {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    if message.get("content"):
        yield {**base, "choices": [{"index": 0, "delta": {"content": message["content"]}, "finish_reason": None}]}
    for i, call in enumerate(message.get("tool_calls") or []):
        delta = {"tool_calls": [{"index": i, "id": call["id"], "type": "function", "function": call["function"]}]}
        yield {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]}
    yield {**base, "choices": [], "usage": completion["usage"]}


class FakeLLM(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address):
        super().__init__(address, Handler)
        self.lock = threading.Lock()
        self.requests = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self.reply(400, {"error": {"message": "bad JSON", "type": "invalid_request_error"}})
        with self.server.lock:
            self.server.requests.append({"path": self.path, "body": body})
            serial = len(self.server.requests)
        if self.path.split("?")[0].rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            return self.reply(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
        completion = answer_for(body, serial)
        if not body.get("stream"):
            return self.reply(200, completion)
        data = b"".join(
            f"data: {json.dumps(chunk)}\n\n".encode() for chunk in stream_chunks(completion)
        ) + b"data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        if self.path.rstrip("/") == "/health":
            return self.reply(200, {"status": "ok"})
        self.reply(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def reply(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_fake")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def start(port=0):
    """Starts the fake on 127.0.0.1:`port` (0: a free one) in a thread; returns (server, port)."""
    server = FakeLLM(("127.0.0.1", port))
    threading.Thread(target=server.serve_forever, name="fake-llm", daemon=True).start()
    return server, server.server_address[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    args = parser.parse_args()
    server = FakeLLM(("127.0.0.1", args.port))
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
