"""Three `agentops serve` replicas on one PostgreSQL database, no proxy in front: the real
clients send to different replicas (one session's requests spread across them), one replica is
killed with `kill -9` during a load, and afterwards every acknowledged event is stored exactly
once and every replica's read API answers the same sessions.

Needs PostgreSQL (`scripts/postgres-env` makes sure it runs; AGENTOPS_TEST_DATABASE_URL names
another server) and `psql`; a missing one fails the run.
"""

import json
import os
import subprocess
import threading
import time
import uuid

import pytest
import requests

from conftest import API_KEY, Server, run_client, server_binary, venv_python
from test_distributed import example, start_service

DATABASE_SERVER = os.environ.get("AGENTOPS_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
EVENTS_PER_BATCH = 20


def psql(sql):
    done = subprocess.run(["psql", DATABASE_SERVER, "-qAtc", sql], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"psql {sql!r} failed (is PostgreSQL running? scripts/postgres-env): {done.stderr}", pytrace=False)
    return done.stdout


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    """Three replicas on a new database (dropped at the end)."""
    name = f"agentops_it_replicas_{uuid.uuid4().hex[:12]}"
    psql(f"CREATE DATABASE {name}")
    url = f"{DATABASE_SERVER.rsplit('/', 1)[0]}/{name}"
    root = tmp_path_factory.mktemp("replicas")
    servers = [
        Server(
            server_binary(),
            root / f"data-{i}",
            root / f"replica-{i}.log",
            extra_args=("--database-url", url, "--grpc-listen", "off"),
        )
        for i in range(3)
    ]
    # started together: the migrations run once, under an advisory lock
    failures = []

    def start(server):
        try:
            server.start()
        except BaseException as e:  # pytest.fail raises an Exception subclass of BaseException
            failures.append(f"{server.log_path.name}: {e}\n{server.log_tail()}")

    starts = [threading.Thread(target=start, args=(s,)) for s in servers]
    for t in starts:
        t.start()
    for t in starts:
        t.join()
    if failures:
        for s in servers:
            s.stop()
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        pytest.fail("a replica did not start:\n" + "\n".join(failures), pytrace=False)
    try:
        yield servers
    finally:
        for s in servers:
            s.stop()
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_replicas_share_one_database_and_their_tokens(replicas):
    a, b, c = replicas
    for s in replicas:
        assert s.get("/health")["status"] == "ok"
    # a token issued by one replica is accepted by the others (the JWT secret is in the database)
    token = a.token()
    for s in (b, c):
        spans = requests.post(
            f"{s.url}/v1/traces",
            data=b"",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-protobuf"},
            timeout=10,
        )
        assert spans.status_code == 200, spans.text
    forged = requests.post(
        f"{c.url}/v1/traces",
        data=b"",
        headers={"Authorization": f"Bearer {token[:-2]}xx", "Content-Type": "application/x-protobuf"},
        timeout=10,
    )
    assert forged.status_code == 401


def test_a_v03_session_begun_on_one_replica_is_continued_on_another(replicas):
    a, b, c = replicas
    first = run_client(a, "v03", "v03_inherit.py", "start")
    second = run_client(b, "v03", "v03_inherit.py", "resume", first["session_id"])
    assert second["session_id"] == first["session_id"]
    detail = c.session(first["session_id"])
    assert detail["end_state"] == "Success"
    assert detail["end_state_reason"] == "resumed and done"
    assert detail["video"] == "https://video.example/run.mp4"
    assert detail["event_count"] == 31
    assert second["tool"] in {e["id"] for e in detail["events"]}


def test_a_v04_client_takes_its_token_from_one_replica_and_sends_spans_to_another(replicas):
    a, b, c = replicas
    run = run_client(a, "v04", "v04_traces.py", extra_env={"AGENTOPS_EXPORTER_ENDPOINT": f"{b.url}/v1/traces"})
    for label, end_state in (("success", "Success"), ("fail", "Fail"), ("indeterminate", "Indeterminate")):
        detail = c.session(run[label]["session_id"])
        assert detail["end_state"] == end_state, label
        assert detail["event_count"] == 5, label


def otlp_spans(trace_id, spans):
    """An OTLP/JSON body of `spans` ((span id, parent id, name)) in one trace."""
    now = time.time_ns()
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "replica-test"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "test"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "parentSpanId": parent,
                                "name": name,
                                "kind": 1,
                                "startTimeUnixNano": str(now),
                                "endTimeUnixNano": str(now + 1_000_000),
                            }
                            for span_id, parent, name in spans
                        ],
                    }
                ],
            }
        ]
    }


def test_spans_sent_without_credentials_to_one_replica_are_claimed_through_another(replicas):
    a, b, c = replicas
    trace = uuid.uuid4().hex
    root, early, late = "1" * 16, "2" * 16, "3" * 16
    # agentops 0.4's first spans, before its token: no credentials, held (202)
    held = requests.post(f"{a.url}/v1/traces", json=otlp_spans(trace, [(early, root, "before-the-token")]), timeout=10)
    assert held.status_code == 202, held.text
    assert all(s.get("/health")["credential_less_spans"]["waiting"] >= 1 for s in replicas)
    # the rest of the trace, with credentials, through another replica
    claimed = requests.post(
        f"{b.url}/v1/traces",
        json=otlp_spans(trace, [(root, "", "run"), (late, root, "after-the-token")]),
        headers={"X-Agentops-Api-Key": API_KEY},
        timeout=10,
    )
    assert claimed.status_code == 200, claimed.text
    session_id = str(uuid.UUID(trace))
    names = sorted(e["name"] for e in c.session(session_id)["events"])
    assert names == ["after-the-token", "before-the-token", "run"]
    assert b.get("/health")["credential_less_spans"]["stored"] >= 1
    # claimed once: sent again through the third replica, nothing more is stored
    again = requests.post(
        f"{c.url}/v1/traces",
        json=otlp_spans(trace, [(late, root, "after-the-token")]),
        headers={"X-Agentops-Api-Key": API_KEY},
        timeout=10,
    )
    assert again.status_code == 200, again.text
    assert a.session(session_id)["event_count"] == 3


def test_the_rust_sdk_and_its_services_each_on_a_replica_make_one_session(replicas):
    a, b, c = replicas
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOPS_")}
    env.update(AGENTOPS_API_KEY=API_KEY, AGENTOPS_MAX_WAIT_TIME="100")
    tool, tool_url = start_service([str(example("tool_service"))], {**env, "AGENTOPS_API_ENDPOINT": b.url})
    python, python_url = start_service(
        [str(venv_python("v04")), str(os.path.join(os.path.dirname(__file__), "clients", "otel_service.py"))],
        {**env, "AGENTOPS_API_ENDPOINT": c.url},
    )
    try:
        run = subprocess.run(
            [str(example("orchestrator"))],
            env={**env, "AGENTOPS_API_ENDPOINT": a.url, "TOOL_SERVICE_URL": tool_url, "SUMMARY_SERVICE_URL": python_url},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
    finally:
        for process in (tool, python):
            process.kill()
            process.wait(timeout=10)
    session_id = json.loads(run.stdout.strip().splitlines()[-1])["session_id"]
    # the downstream services' spans may still be on their way to b and c
    deadline = time.monotonic() + 20
    while True:
        names = sorted(e["name"] for e in a.session(session_id)["events"])
        if len(names) >= 7 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert names == sorted(
        ["plan_trip", "weather_service", "lookup_forecast", "forecast_api", "summary_service", "summarise", "chat gpt-4o-mini"]
    )
    for s in (b, c):
        assert sorted(e["name"] for e in s.session(session_id)["events"]) == names


def post_batch(url, jwt, ids):
    """POSTs one v2 batch; True only when the replica acknowledged it."""
    events = [
        {"id": i, "event_type": "tools", "init_timestamp": "2026-11-22T01:30:23.000000+00:00", "params": {"n": i}}
        for i in ids
    ]
    try:
        reply = requests.post(
            f"{url}/v2/create_events",
            json={"events": events},
            headers={"X-Agentops-Api-Key": API_KEY, "Authorization": f"Bearer {jwt}"},
            timeout=10,
        )
    except requests.RequestException:
        return False
    return reply.status_code == 200


def test_kill_9_of_a_replica_during_a_load_loses_nothing_acknowledged(replicas):
    a, b, c = replicas
    session_id = str(uuid.uuid4())
    created = requests.post(
        f"{a.url}/v2/create_session", json={"session": {"session_id": session_id}}, headers={"X-Agentops-Api-Key": API_KEY}, timeout=10
    )
    assert created.status_code == 200, created.text
    jwt = created.json()["jwt"]
    acknowledged, unacknowledged, lock = set(), [], threading.Lock()
    killed = threading.Event()

    def client(t):
        # each client sends to the replicas in turn; after the kill, what b did not acknowledge
        # is kept to be retried elsewhere
        for n in range(100_000):
            ids = [f"00000000-0000-4000-8000-{t:04d}{n:04d}{i:04d}" for i in range(EVENTS_PER_BATCH)]
            target = replicas[(t + n) % 3]
            if post_batch(target.url, jwt, ids):
                with lock:
                    acknowledged.update(ids)
            else:
                with lock:
                    unacknowledged.append(ids)
            if killed.is_set() and n > 0 and target is b:
                return

    clients = [threading.Thread(target=client, args=(t,)) for t in range(6)]
    for t in clients:
        t.start()
    time.sleep(2.0)
    b.process.kill()  # SIGKILL: no flush, no goodbye
    b.process.wait(timeout=10)
    killed.set()
    for t in clients:
        t.join(timeout=120)
    assert len(acknowledged) >= 20 * EVENTS_PER_BATCH, f"the load ran: {len(acknowledged)} acknowledged"
    assert unacknowledged, "the kill interrupted requests in flight"

    # what reached no replica is retried on a surviving one, as a client does
    for ids in unacknowledged:
        assert post_batch(c.url, jwt, ids)
    expected = acknowledged.union(*unacknowledged)

    b.start()  # the killed replica comes back on the same database
    for s in replicas:
        detail = s.session(session_id)
        ids = [e["id"] for e in detail["events"]]
        assert len(ids) == len(set(ids)), "no event stored twice"
        assert set(ids) == expected, f"{len(expected - set(ids))} events missing on {s.url}"
        assert detail["event_count"] == len(expected)


def test_every_replica_lists_the_same_sessions(replicas):
    listed = [
        sorted((s["id"], s["event_count"], s.get("end_state")) for s in server.sessions().values()) for server in replicas
    ]
    assert listed[0], "the sessions of the tests above"
    assert listed[0] == listed[1] == listed[2]
