"""Plain OpenTelemetry Python (SDK and OTLP/HTTP exporter 1.44.0, no agentops) against our
server's /v1/traces: protobuf (plain and gzip) through the real OTLPSpanExporter, and OTLP JSON
made with google.protobuf.json_format; authenticated with a token from /v3/auth/token.

These run inside the pytest process, which is the v04 venv's python."""

import base64
import json
import uuid
from collections import Counter

import pytest
import requests
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from conftest import API_KEY

# claude-sonnet-4-5 in the builtin table: input 3.0, cached input 0.3, output 15.0 $/M tokens.
CLAUDE_COST = (600 * 3.0 + 400 * 0.3 + 200 * 15.0) / 1e6


def record_agent_run(label, session_id=None):
    """Records one trace of four spans in memory and returns (spans, ids)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": f"plain-otel-{label}"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.python.plain_otel", "1.0")
    extra = {"session.id": session_id} if session_id else {}
    with tracer.start_as_current_span(f"{label}-run", attributes={"run.label": label, **extra}) as root:
        with tracer.start_as_current_span(
            "chat claude-sonnet-4-5",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 200,
                "gen_ai.usage.cache_read.input_tokens": 400,
                "gen_ai.input.messages": json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": f"{label}?"}]}]
                ),
                **extra,
            },
        ) as llm:
            pass
        with tracer.start_as_current_span(
            "execute_tool get_weather",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather", **extra},
        ) as tool:
            pass
        with tracer.start_as_current_span("flaky-step", attributes=extra) as failing:
            failing.record_exception(ValueError("flaky failed"))
            failing.set_status(Status(StatusCode.ERROR, "flaky failed"))
    provider.shutdown()
    spans = memory.get_finished_spans()
    assert len(spans) == 4
    hexid = lambda s: format(s.get_span_context().span_id, "016x")  # noqa: E731
    trace_id = root.get_span_context().trace_id
    ids = {
        "session_id": session_id or str(uuid.UUID(int=trace_id)),
        "trace_id": format(trace_id, "032x"),
        "root": hexid(root),
        "llm": hexid(llm),
        "tool": hexid(tool),
        "failing": hexid(failing),
    }
    return spans, ids


def check_stored(server, ids, label):
    detail = server.session(ids["session_id"])
    events = {e["span_id"]: e for e in detail["events"]}
    assert set(events) == {ids["root"], ids["llm"], ids["tool"], ids["failing"]}
    assert Counter(e["kind"] for e in events.values()) == {"span": 2, "llms": 1, "tools": 1}
    root, llm, tool, failing = (events[ids[k]] for k in ("root", "llm", "tool", "failing"))
    assert all(e["trace_id"] == ids["trace_id"] for e in events.values())
    assert root["parent_id"] is None
    assert {llm["parent_id"], tool["parent_id"], failing["parent_id"]} == {ids["root"]}
    assert root["name"] == f"{label}-run"
    assert root["attributes"]["run.label"] == label
    assert root["attributes"]["otel.scope.name"] == "tests.python.plain_otel"
    assert llm["model"] == "claude-sonnet-4-5"
    assert llm["provider"] == "anthropic"
    assert (llm["input_tokens"], llm["output_tokens"], llm["cached_tokens"]) == (1000, 200, 400)
    assert llm["prompt"] == [{"role": "user", "parts": [{"type": "text", "content": f"{label}?"}]}]
    assert llm["cost"] == pytest.approx(CLAUDE_COST, rel=1e-9)
    assert tool["attributes"]["gen_ai.tool.name"] == "get_weather"
    assert failing["status"] == "error"
    assert failing["status_message"] == "flaky failed"
    (exception,) = failing["attributes"]["otel.events"]
    assert exception["name"] == "exception"
    assert exception["attributes"]["exception.type"] == "ValueError"
    assert root["status"] is None
    assert (detail["input_tokens"], detail["output_tokens"]) == (1000, 200)
    assert detail["cost"] == pytest.approx(CLAUDE_COST, rel=1e-9)
    assert detail["event_count"] == 4
    return detail


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip], ids=["plain", "gzip"])
def test_otlp_protobuf_exporter(server, compression):
    label = f"protobuf-{compression.value}"
    spans, ids = record_agent_run(label)
    exporter = OTLPSpanExporter(
        endpoint=f"{server.url}/v1/traces",
        headers={"Authorization": f"Bearer {server.token()}"},
        compression=compression,
        timeout=10,
    )
    try:
        assert exporter.export(spans) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    detail = check_stored(server, ids, label)
    # A trace without session.id is a session whose id is the trace id as a UUID; it has no
    # agentops session span, so no name or end state.
    assert detail["end_state"] is None


def test_otlp_protobuf_export_is_idempotent(server):
    spans, ids = record_agent_run("protobuf-retry")
    token = server.token()
    exporter = OTLPSpanExporter(
        endpoint=f"{server.url}/v1/traces", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    try:
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        assert exporter.export(spans) == SpanExportResult.SUCCESS  # a client retry
    finally:
        exporter.shutdown()
    check_stored(server, ids, "protobuf-retry")  # still exactly four events


def post_json(server, body, token):
    return requests.post(
        f"{server.url}/v1/traces",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        timeout=10,
    )


def test_otlp_json_from_protobuf_json_format(server):
    # json_format writes ids in base64 and 64-bit integers as strings (protobuf's JSON mapping).
    spans, ids = record_agent_run("json-base64")
    body = json_format.MessageToJson(encode_spans(spans))
    assert "traceId" in body and ids["trace_id"] not in body
    response = post_json(server, body, server.token())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "partialSuccess" not in response.json()
    check_stored(server, ids, "json-base64")


def test_otlp_json_with_hex_ids_and_a_session_id(server):
    # The OTLP/JSON spec writes trace and span ids in hex; session.id groups the spans.
    session_id = f"otel-session-{uuid.uuid4()}"
    spans, ids = record_agent_run("json-hex", session_id=session_id)
    request = json_format.MessageToDict(encode_spans(spans))
    for resource_spans in request["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    response = post_json(server, json.dumps(request), server.token())
    assert response.status_code == 200, response.text
    detail = check_stored(server, ids, "json-hex")
    assert detail["id"] == session_id


def test_otlp_json_partial_success_for_a_bad_span(server):
    spans, ids = record_agent_run("json-partial")
    request = json_format.MessageToDict(encode_spans(spans))
    bad = dict(request["resourceSpans"][0]["scopeSpans"][0]["spans"][0])
    bad["traceId"] = "00000000000000000000000000000000"
    bad["spanId"] = "0000000000000001"
    request["resourceSpans"][0]["scopeSpans"][0]["spans"].append(bad)
    response = post_json(server, json.dumps(request), server.token())
    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 1
    assert "trace id" in partial["errorMessage"]
    check_stored(server, ids, "json-partial")


def test_spans_without_a_valid_token_are_not_stored(server):
    spans, ids = record_agent_run("unauthorised")
    body = json_format.MessageToJson(encode_spans(spans))
    # A forged token is refused.
    assert post_json(server, body, "not-a-token").status_code == 401
    # No credentials at all: held for an authenticated request of the same trace (202, which
    # the exporter counts as a success), never stored while none comes.
    no_auth = requests.post(
        f"{server.url}/v1/traces", data=body, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert no_auth.status_code == 202
    exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", timeout=10)
    try:
        assert exporter.export(spans) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    server.get(f"/api/v1/sessions/{ids['session_id']}", expect=404)


def test_auth_token_endpoint(server):
    ok = requests.post(f"{server.url}/v3/auth/token", json={"api_key": API_KEY}, timeout=10)
    assert ok.status_code == 200
    body = ok.json()
    assert body["token"].count(".") == 2  # a JWT
    assert body["project_id"]
    wrong = requests.post(
        f"{server.url}/v3/auth/token", json={"api_key": "00000000-0000-4000-8000-000000000000"}, timeout=10
    )
    assert wrong.status_code == 401

