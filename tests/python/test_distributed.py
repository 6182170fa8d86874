"""One session across three processes: a Rust orchestrator (the SDK's `examples/orchestrator.rs`)
calls a Rust tool service (`examples/tool_service.rs`, which continues the session with
`join_session`) and a Python service instrumented with plain OpenTelemetry, passing the session on
in W3C `traceparent` and `baggage` headers. The server shows one session, every service's work
nested under the call that asked for it, the baggage on the downstream events."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import API_KEY, REPO, server_binary, venv_python

CLIENTS = Path(__file__).resolve().parent / "clients"


def example(name):
    """The built SDK example `name` (next to the server binary's target directory)."""
    path = server_binary().parent / "examples" / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"no SDK example binary at {path}: run `cargo build -p agentops --examples` first",
            pytrace=False,
        )
    return path


def start_service(command, env):
    """Starts a service that prints `listening on URL` first; returns (process, url)."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, text=True
    )
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        process.kill()
        pytest.fail(f"{command[0]} did not start: {line}{process.stdout.read()}", pytrace=False)
    return process, line.removeprefix("listening on ")


@pytest.fixture(scope="module")
def distributed(server):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOPS_")}
    env.update(AGENTOPS_API_KEY=API_KEY, AGENTOPS_API_ENDPOINT=server.url, AGENTOPS_MAX_WAIT_TIME="100")
    tool, tool_url = start_service([str(example("tool_service"))], env)
    python, python_url = start_service([str(venv_python("v04")), str(CLIENTS / "otel_service.py")], env)
    try:
        run = subprocess.run(
            [str(example("orchestrator"))],
            env={**env, "TOOL_SERVICE_URL": tool_url, "SUMMARY_SERVICE_URL": python_url},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        session_id = json.loads(run.stdout.strip().splitlines()[-1])["session_id"]
    finally:
        for process in (tool, python):
            process.kill()
            process.wait(timeout=10)
    return server.session(session_id)


def by_name(detail, name):
    found = [e for e in detail["events"] if e["name"] == name]
    assert len(found) == 1, f"expected one {name!r} event, got {[e['name'] for e in detail['events']]}"
    return found[0]


def test_three_services_make_one_session(distributed):
    detail = distributed
    assert detail["end_state"] == "Success"
    assert detail["end_state_reason"] == "trip planned"
    assert detail["tags"] == ["distributed"]
    names = sorted(e["name"] for e in detail["events"])
    assert names == sorted(
        [
            "plan_trip",
            "weather_service",
            "lookup_forecast",
            "forecast_api",
            "summary_service",
            "summarise",
            "chat gpt-4o-mini",
        ]
    )


def test_each_services_work_is_nested_under_the_call_that_asked_for_it(distributed):
    detail = distributed
    nodes = {n["name"]: n for n in detail["event_tree"]}
    parent = {name: node["parent_id"] for name, node in nodes.items()}
    ids = {name: node["id"] for name, node in nodes.items()}
    assert parent["plan_trip"] is None
    assert parent["weather_service"] == ids["plan_trip"]
    assert parent["lookup_forecast"] == ids["weather_service"]  # the Rust tool service
    assert parent["forecast_api"] == ids["lookup_forecast"]
    assert parent["summary_service"] == ids["plan_trip"]
    assert parent["summarise"] == ids["summary_service"]  # the Python service
    assert parent["chat gpt-4o-mini"] == ids["summarise"]


def test_the_baggage_reaches_the_downstream_events(distributed):
    detail = distributed
    for name in ("lookup_forecast", "forecast_api", "summarise", "chat gpt-4o-mini"):
        assert by_name(detail, name)["attributes"]["user.id"] == "u-42", name


def test_the_python_services_llm_call_is_priced_in_the_session(distributed):
    chat = by_name(distributed, "chat gpt-4o-mini")
    assert chat["kind"] == "llms"
    assert (chat["input_tokens"], chat["output_tokens"]) == (40, 8)
    assert chat["cost"] > 0
    assert distributed["input_tokens"] >= 40
