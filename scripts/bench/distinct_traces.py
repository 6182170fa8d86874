"""One OTLP/HTTP protobuf request whose N spans each belong to a trace (so a session) of their
own; prints how long the server took to acknowledge it (committed).

    target/python/v04/bin/python scripts/bench/distinct_traces.py http://127.0.0.1:4318 <api key> 80000
"""
import os, sys, time, urllib.request
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.proto.common.v1.common_pb2 import KeyValue, AnyValue

url, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
now = time.time_ns()
spans = []
for i in range(n):
    spans.append(Span(trace_id=os.urandom(16), span_id=os.urandom(8), name="chat", kind=1,
        start_time_unix_nano=now, end_time_unix_nano=now + 1000,
        attributes=[KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="gpt-4o"))]))
req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])
body = req.SerializeToString()
r = urllib.request.Request(url + "/v1/traces", data=body, method="POST",
    headers={"Content-Type": "application/x-protobuf", "X-Agentops-Api-Key": key})
t = time.time()
with urllib.request.urlopen(r, timeout=600) as resp:
    resp.read()
print(f"{n} spans in {n} traces, {len(body)/1e6:.1f} MB: {time.time()-t:.2f} s, HTTP {resp.status}")
