"""One OTLP/HTTP protobuf request whose N spans each belong to a trace (so a session) of their
own; prints how long the server took to acknowledge it (committed), and how long small writes of
another client (a v2 create_session every 20 ms) waited meanwhile.

    target/python/v04/bin/python scripts/bench/distinct_traces.py http://127.0.0.1:4318 <api key> 80000
"""
import json, os, sys, threading, time, urllib.request, uuid
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

waits, done = [], threading.Event()


def probe():
    """Small writes of another client while the large request is being written."""
    while not done.is_set():
        session = json.dumps({"session": {"session_id": str(uuid.uuid4()), "tags": ["probe"]}}).encode()
        small = urllib.request.Request(url + "/v2/create_session", data=session, method="POST",
            headers={"Content-Type": "application/json", "X-Agentops-Api-Key": key})
        t = time.time()
        with urllib.request.urlopen(small, timeout=600) as answer:
            answer.read()
        waits.append(time.time() - t)
        time.sleep(0.02)


prober = threading.Thread(target=probe)
t = time.time()
prober.start()
with urllib.request.urlopen(r, timeout=600) as resp:
    resp.read()
elapsed = time.time() - t
done.set()
prober.join()
waits.sort()
print("waits:", [round(w*1000) for w in waits][:10], file=sys.stderr)
print(f"{n} spans in {n} traces, {len(body)/1e6:.1f} MB: {elapsed:.2f} s, HTTP {resp.status}; "
      f"meanwhile {len(waits)} small writes of another client: median {waits[len(waits)//2]*1000:.0f} ms, "
      f"max {waits[-1]*1000:.0f} ms")
