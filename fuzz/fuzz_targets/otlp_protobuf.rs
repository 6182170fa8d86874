//! `POST /v1/traces` with `Content-Type: application/x-protobuf`: any bytes are decoded as an
//! OTLP `ExportTraceServiceRequest` and the spans mapped to rows, as the handler does. Errors are
//! fine; a panic, or a row breaking the server's limits, is a bug.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(spans) = agentops_server::ingest::otlp::decode_protobuf(data) {
        common::map_and_check(&spans);
    }
});
