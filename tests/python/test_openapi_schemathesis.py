"""schemathesis against the read API: every GET operation of /api/v1/openapi.json, with
requests generated from the document itself (valid and invalid parameters), sent to a real
`agentops serve` that holds data (a 0.3 session with its events and agent, a 0.4 OTLP export),
authenticated with an API key. Each answer must pass schemathesis's checks: no server error, a
status, content type, headers and body the document declares; invalid input refused with a 4xx.

The server is this module's own (not the session-wide one of conftest.py), so what other tests
store does not change what is generated here, and the other way round. Generation is
derandomized: the same cases every run.
"""

import copy
import json
import uuid
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import API_KEY, Server, server_binary

FIXTURES = Path(__file__).resolve().parents[2] / "crates/agentops-server/tests/fixtures"
AUTH = {"X-Agentops-Api-Key": API_KEY}
# Cases per endpoint and mode (valid, invalid): enough to cover each parameter's kinds of
# values, few enough to take seconds.
EXAMPLES = 60
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


def post(url, path, body, headers):
    response = requests.post(f"{url}{path}", json=body, headers=headers, timeout=10)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
    return response.json()


def seed(url):
    """Stores the captured 0.3 session (events, agent, end state) and 0.4 export; returns the
    ids of a stored session and one of its events."""
    session = fixture("v03_v2_create_session.json")["body"]
    session_id = session["session"]["session_id"]
    jwt = post(url, "/v2/create_session", session, AUTH)["jwt"]
    writer = {**AUTH, "Authorization": f"Bearer {jwt}"}
    events = fixture("v03_v2_create_events.json")["body"]
    post(url, "/v2/create_events", events, writer)
    post(url, "/v2/create_agent", fixture("v03_v2_create_agent.json")["body"], writer)
    post(url, "/v2/update_session", fixture("v03_v2_update_session_end_Success.json")["body"], writer)
    # a second, failed session with an error event, so that filters and stats have both kinds
    failed = copy.deepcopy(session)
    failed["session"]["session_id"] = str(uuid.uuid4())
    failed["session"]["tags"] = ["schemathesis", "failed"]
    failed_jwt = post(url, "/v2/create_session", failed, AUTH)["jwt"]
    error_event = fixture("v03_event_examples.json")["errors"]
    error_event = {**error_event, "id": str(uuid.uuid4()), "session_id": failed["session"]["session_id"]}
    post(url, "/v2/create_events", {"events": [error_event]}, {**AUTH, "Authorization": f"Bearer {failed_jwt}"})
    otlp = fixture("v04_v1_traces.json")["body_decoded_otlp"]
    response = requests.post(
        f"{url}/v1/traces",
        data=json.dumps(otlp),
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return session_id, events["events"][0]["id"]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("schemathesis-server")
    srv = Server(server_binary(), root / "data", root / "server.log")
    srv.start()
    try:
        session_id, event_id = seed(srv.url)
        yield {"server": srv, "session_id": session_id, "event_id": event_id}
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def api_schema(api):
    return schemathesis.openapi.from_url(f"{api['server'].url}/api/v1/openapi.json")


# The read endpoints: every GET of the document (checked below, so that a new one is covered).
READ_PATHS = [
    "/api/v1/sessions",
    "/api/v1/sessions/{id}",
    "/api/v1/sessions/{id}/events/{event_id}",
    "/api/v1/agents",
    "/api/v1/stats",
    "/api/v1/metrics",
    "/api/v1/openapi.json",
]


# Those with query parameters, which can be given invalid values (a path parameter is any
# string, so it has none).
WITH_QUERY = ["/api/v1/sessions", "/api/v1/sessions/{id}", "/api/v1/stats", "/api/v1/metrics"]


def test_every_get_of_the_document_is_exercised(api):
    document = requests.get(f"{api['server'].url}/api/v1/openapi.json", timeout=10).json()
    gets = sorted(path for path, item in document["paths"].items() if "get" in item)
    assert gets == sorted(READ_PATHS)
    with_query = sorted(
        path
        for path in READ_PATHS
        if any(p["in"] == "query" for p in document["paths"][path]["get"].get("parameters", []))
    )
    assert with_query == sorted(WITH_QUERY)


# schemathesis's own pytest integration (`from_fixture`, lazy schemas) does not work with
# pytest 9; the operations' hypothesis strategies are driven directly instead.
@pytest.mark.parametrize(
    "path, mode",
    [(path, GenerationMode.POSITIVE) for path in READ_PATHS]
    + [(path, GenerationMode.NEGATIVE) for path in WITH_QUERY],
    ids=lambda v: v.value if isinstance(v, GenerationMode) else v,
)
def test_every_read_endpoint_conforms_to_its_openapi_document(api_schema, path, mode):
    operation = api_schema[path]["GET"]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        case.call_and_validate(headers=AUTH, checks=CHECKS)

    check()


@pytest.mark.parametrize(
    "path, query",
    [
        ("/api/v1/sessions", {}),
        ("/api/v1/sessions", {"end_state": "Success", "sort": "-cost", "limit": 1}),
        ("/api/v1/sessions", {"tag": "schemathesis", "has_errors": "true"}),
        ("/api/v1/sessions/{id}", {}),
        ("/api/v1/sessions/{id}", {"events": "tree"}),
        ("/api/v1/sessions/{id}", {"events": "none"}),
        ("/api/v1/sessions/{id}/events/{event_id}", {}),
        ("/api/v1/agents", {}),
        ("/api/v1/stats", {}),
        ("/api/v1/stats", {"from": "2026-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"}),
    ],
)
def test_answers_about_stored_data_conform_too(api, api_schema, path, query):
    """Generated ids are almost never stored ones: these cases read what was seeded, so that the
    full answers (events, tree, agents, stats) are checked against the document as well."""
    operation = api_schema[path]["GET"]
    params = {}
    if "{id}" in path:
        params["id"] = api["session_id"]
    if "{event_id}" in path:
        params["event_id"] = api["event_id"]
    case = operation.Case(path_parameters=params or None, query=query or None)
    response = case.call_and_validate(headers=AUTH, checks=CHECKS)
    assert response.status_code == 200, response.text
    body = response.json()
    if path == "/api/v1/sessions" and not query:
        assert len(body["sessions"]) >= 3, body
    if path == "/api/v1/sessions/{id}" and not query:
        assert body["events"] and body["event_tree"], body.keys()
    if path == "/api/v1/agents":
        assert body["agents"], body


def test_without_credentials_every_read_endpoint_is_a_json_401(api, api_schema):
    for path, params in [
        ("/api/v1/sessions", None),
        ("/api/v1/sessions/{id}", {"id": api["session_id"]}),
        ("/api/v1/sessions/{id}/events/{event_id}", {"id": api["session_id"], "event_id": api["event_id"]}),
        ("/api/v1/agents", None),
        ("/api/v1/stats", None),
    ]:
        case = api_schema[path]["GET"].Case(path_parameters=params)
        response = case.call()
        assert response.status_code == 401, (path, response.status_code, response.text)
        assert response.headers["content-type"] == ["application/json"] or response.headers[
            "content-type"
        ] == "application/json", response.headers
        assert isinstance(response.json()["error"], str)
