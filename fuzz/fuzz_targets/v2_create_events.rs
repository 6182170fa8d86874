//! `POST /v2/create_events`: any bytes are parsed as the request body and each event mapped to
//! a row, as the handler does (for a fixed session). Errors are fine; a panic, or a row breaking
//! the server's limits, is a bug.
#![no_main]

#[path = "common.rs"]
mod common;

use agentops_core::v2::CreateEventsRequest;
use agentops_server::ingest::body::parse_json;
use agentops_server::mapping::v2::event_from_v2;
use libfuzzer_sys::fuzz_target;

/// The session of the token (the captured requests' session, so their events match it).
const SESSION_ID: &str = "ec025968-28a1-40dc-a031-44309d8be760";

fuzz_target!(|data: &[u8]| {
    let Ok(request) = parse_json::<CreateEventsRequest>(data) else {
        return;
    };
    let prices = agentops_core::pricing::PriceTable::builtin();
    for (i, event) in request.events.iter().enumerate() {
        if let Ok(record) = event_from_v2(event, i, SESSION_ID, &prices) {
            assert_eq!(record.session_id, SESSION_ID);
            common::check_event(&record);
        }
    }
});
