#!/usr/bin/env python3
"""Writes fuzz/seeds/<target>/ from the real captured requests in
crates/agentops-server/tests/fixtures/ (copies of /work/shared/protocol/ captures of the PyPI
AgentOps SDKs 0.3.26 and 0.4.21). Needs google.protobuf and opentelemetry-proto, as in the
target/python/v04 venv that scripts/python-env builds:

    target/python/v04/bin/python fuzz/scripts/make-seeds.py

The seeds are committed; run this again only when the fixtures change.
"""
import base64
import copy
import json
import pathlib

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "crates/agentops-server/tests/fixtures"
SEEDS = ROOT / "fuzz/seeds"


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


def write(target, name, data):
    directory = SEEDS / target
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (directory / name).write_bytes(data)


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# OTLP: the real 0.4.21 export, as protobuf (what the SDK sent), as protobuf JSON (base64 ids,
# enum numbers), and as the OTLP/JSON spec's form (hex ids, enum names).
otlp = fixture("v04_v1_traces.json")["body_decoded_otlp"]
request = json_format.ParseDict(otlp, trace_service_pb2.ExportTraceServiceRequest())
write("otlp_protobuf", "v04_export.pb", request.SerializeToString())
write("otlp_json", "v04_export_base64.json", compact(otlp))

KINDS = ["SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT",
         "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"]
STATUS = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"]
hexed = copy.deepcopy(otlp)
for resource_spans in hexed["resourceSpans"]:
    for scope_spans in resource_spans["scopeSpans"]:
        for span in scope_spans["spans"]:
            for key in ("traceId", "spanId", "parentSpanId"):
                if span.get(key):
                    span[key] = base64.b64decode(span[key]).hex()
            if isinstance(span.get("kind"), int):
                span["kind"] = KINDS[span["kind"]]
            status = span.get("status") or {}
            if isinstance(status.get("code"), int):
                status["code"] = STATUS[status["code"]]
write("otlp_json", "v04_export_hex.json", compact(hexed))
# One span alone, in protobuf too: a small input the fuzzer mutates quickly.
single = copy.deepcopy(otlp)
single["resourceSpans"] = single["resourceSpans"][:1]
single["resourceSpans"][0]["scopeSpans"] = single["resourceSpans"][0]["scopeSpans"][:1]
single["resourceSpans"][0]["scopeSpans"][0]["spans"] = single["resourceSpans"][0]["scopeSpans"][0]["spans"][:1]
write("otlp_json", "v04_one_span.json", compact(single))
write("otlp_protobuf", "v04_one_span.pb",
      json_format.ParseDict(single, trace_service_pb2.ExportTraceServiceRequest()).SerializeToString())

# v2: the real 0.3.26 create_events batch, and one event of each kind (with an auto-instrumented
# OpenAI call).
write("v2_create_events", "v03_batch.json", compact(fixture("v03_v2_create_events.json")["body"]))
for kind, event in fixture("v03_event_examples.json").items():
    write("v2_create_events", f"v03_{kind}.json", compact({"events": [event]}))

# The session list's query strings, as the dashboard sends them, and a real cursor.
cursor = base64.urlsafe_b64encode(
    compact(["-start_time", "t", "2026-11-22T01:30:22.721555+00:00",
             "ec025968-28a1-40dc-a031-44309d8be760"]).encode()).decode().rstrip("=")
cost_cursor = base64.urlsafe_b64encode(
    compact(["cost", "f", "4591870180066957722", "ec025968-28a1-40dc-a031-44309d8be760"]).encode()
).decode().rstrip("=")
for name, query in {
    "empty": "",
    "dashboard": "limit=50&sort=-start_time",
    "filters": "from=2026-11-22T00:00:00Z&to=2026-11-23T00:00:00%2B01:00&tag=a,b&tag=c"
               "&end_state=running&agent=researcher&model=gpt-4o-mini&has_errors=true&q=weather",
    "cursor": f"sort=-start_time&limit=2&cursor={cursor}",
    "cost_cursor": f"sort=cost&cursor={cost_cursor}",
    "ended": "end_state=Fail&sort=-duration&limit=1000",
}.items():
    write("session_query", f"{name}.txt", query)
