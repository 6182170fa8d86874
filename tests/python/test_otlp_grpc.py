"""OTLP/gRPC and OTLP metrics with the real OpenTelemetry Python SDK and its exporters.

- traces and metrics through `opentelemetry-exporter-otlp-proto-grpc` (gzip, the API key as
  metadata) to `agentops serve --grpc-listen`, read back through the read API;
- metrics through the OTLP/HTTP exporter too;
- bad gRPC input sent with grpcio itself: a malformed protobuf, an oversized message, no or a
  wrong API key, each answered with the status code OTLP exporters expect.
"""

import time
import uuid

import grpc
import pytest

from conftest import API_KEY, Server, free_port, server_binary

TRACE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture(scope="module")
def grpc_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("agentops-grpc")
    port = free_port()
    srv = Server(
        server_binary(),
        root / "data",
        root / "server.log",
        extra_args=["--grpc-listen", f"127.0.0.1:{port}"],
    )
    srv.start()
    srv.grpc_target = f"127.0.0.1:{port}"
    try:
        yield srv
    finally:
        srv.stop()


def _providers(exporter_kind, target, label):
    """A tracer and a meter exporting with the gRPC or HTTP exporters, and a shutdown."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": f"svc-{label}"})
    if exporter_kind == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression

        args = dict(
            endpoint=target,
            insecure=True,
            headers=(("x-agentops-api-key", API_KEY),),
            compression=Compression.Gzip,
        )
        span_exporter = OTLPSpanExporter(**args)
        metric_exporter = OTLPMetricExporter(**args)
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        headers = {"X-Agentops-Api-Key": API_KEY}
        span_exporter = OTLPSpanExporter(endpoint=f"{target}/v1/traces", headers=headers)
        metric_exporter = OTLPMetricExporter(endpoint=f"{target}/v1/metrics", headers=headers)
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=60_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])

    def shutdown():
        tracer_provider.shutdown()
        meter_provider.shutdown()

    return tracer_provider.get_tracer("grpc-test"), meter_provider.get_meter("grpc-test"), shutdown


def _record(tracer, meter, label):
    """One trace of two spans and a counter and histogram by model; the trace id as a UUID."""
    tokens = meter.create_counter("app.tokens", unit="{token}")
    latency = meter.create_histogram("app.latency", unit="s")
    with tracer.start_as_current_span(f"root-{label}") as root:
        with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
            chat.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            chat.set_attribute("gen_ai.usage.input_tokens", 31)
            chat.set_attribute("gen_ai.usage.output_tokens", 9)
        trace_id = root.get_span_context().trace_id
    for model, count, seconds in [("gpt-4o-mini", 31, 0.2), ("gpt-4o-mini", 9, 0.4), ("claude", 5, 1.0)]:
        tokens.add(count, {"model": model, "label": label})
        latency.record(seconds, {"model": model, "label": label})
    return str(uuid.UUID(int=trace_id))


def _series(server, name, label):
    answer = server.get(f"/api/v1/metrics?name={name}&group_by=model&attr.label={label}&bucket=1d")
    return {
        s["attributes"]["model"]: s["points"]
        for s in answer["series"]
    }


@pytest.mark.parametrize("exporter_kind", ["grpc", "http"])
def test_python_sdk_traces_and_metrics_are_stored(grpc_server, exporter_kind):
    label = f"{exporter_kind}-{uuid.uuid4().hex[:8]}"
    target = grpc_server.grpc_target if exporter_kind == "grpc" else grpc_server.url
    tracer, meter, shutdown = _providers(exporter_kind, target, label)
    session_id = _record(tracer, meter, label)
    shutdown()

    session = grpc_server.session(session_id)
    assert session["name"] == f"root-{label}"
    assert (session["input_tokens"], session["output_tokens"]) == (31, 9)
    assert sorted(e["name"] for e in session["events"]) == ["chat gpt-4o-mini", f"root-{label}"]

    deadline = time.monotonic() + 10
    while True:
        tokens = _series(grpc_server, "app.tokens", label)
        if tokens or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    # the SDK's counters are cumulative: the server answers what was added
    assert {model: sum(p["value"] for p in points) for model, points in tokens.items()} == {
        "gpt-4o-mini": 40.0,
        "claude": 5.0,
    }
    latency = _series(grpc_server, "app.latency", label)
    mini = latency["gpt-4o-mini"][0]
    assert (mini["count"], round(mini["sum"], 6), round(mini["value"], 6)) == (2, 0.6, 0.3)
    assert (mini["min"], mini["max"]) == (0.2, 0.4)
    names = {m["name"]: m for m in grpc_server.get("/api/v1/metrics")["metrics"]}
    assert names["app.latency"]["kind"] == "histogram"
    assert names["app.tokens"]["unit"] == "{token}"


def _raw_export(target, payload, metadata):
    with grpc.insecure_channel(target) as channel:
        export = channel.unary_unary(TRACE_METHOD, request_serializer=None, response_deserializer=None)
        return export(payload, metadata=metadata, timeout=10)


def _code(target, payload, metadata):
    with pytest.raises(grpc.RpcError) as refused:
        _raw_export(target, payload, metadata)
    return refused.value.code(), refused.value.details()


def test_bad_grpc_input_gets_the_codes_exporters_expect(grpc_server):
    target = grpc_server.grpc_target
    key = (("x-agentops-api-key", API_KEY),)
    code, details = _code(target, b"\xff\xff\xff\xff", key)
    # tonic answers a message it cannot decode with INTERNAL, which exporters do not retry
    assert code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT), (code, details)
    assert "decode" in details, details
    # the default limit is 16 MiB, as for OTLP/HTTP bodies
    code, _ = _code(target, b"\x0a" + b"\xff" * (17 * 1024 * 1024), key)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    code, details = _code(target, b"", ())
    assert code == grpc.StatusCode.UNAUTHENTICATED and "x-agentops-api-key" in details
    code, _ = _code(target, b"", (("x-agentops-api-key", "0e0f6a1e-8b2d-4e7f-9a1c-5d6e7f8a9b0c"),))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    # an empty request is valid: nothing to store, an empty answer
    assert _raw_export(target, b"", key) == b""
    # and the server still serves
    assert grpc_server.get("/health")["status"] == "ok"
