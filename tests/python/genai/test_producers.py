"""Conformance of real GenAI instrumentation packages against our server.

Each producer is a real PyPI instrumentation package, in its own venv (scripts/python-env),
instrumenting the real openai client inside the same small agent (producers/_agent.py): two
chat completions against a local fake of the OpenAI API (fake_llm.py) around an
`execute_tool get_weather` span. What reaches the server is exactly what the package sends,
over OTLP/HTTP (protobuf) through the OpenTelemetry SDK's own exporters; nothing here is a
hand-written stand-in for it. The checks read the result back through the read API:

- the plain trace's session ends by itself within the quiet window (`--session-quiet-seconds
  2`), Success, or Fail with the exception's message for the `--fail` run; it is named after the
  root span (`trip-planner-<label>`);
- tokens are the fake's usage summed (31+48 in, 9+12 out), the cost is priced (> 0) and is the
  sum of the LLM events' costs;
- each LLM event's `messages` hold the conversation as text (system, user, the answer), the
  tool's result, and the tool call the first answer asks for;
- that tool call (`call_weather_1`) links the first LLM event and the execute_tool event both
  ways (`tool_links`), on the flat events, the event tree and the event detail;
- the finish reasons reach the messages.

Known gaps are marked where they are: a strict xfail for a gap in our server's mapping (it
turns into a failure once the mapping is fixed, so the mark gets removed), a comment for what
a package itself does not send.

Run: scripts/python-env && cargo build -p agentops-cli &&
     target/python/v04/bin/python -m pytest tests/python/genai -q
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import API_KEY, REPO, Server, offline_env, server_binary

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fake_llm  # noqa: E402

PRODUCERS = HERE / "producers"
QUIET_SECONDS = 2
RUN_TIMEOUT = 90.0
END_TIMEOUT = 20.0

SYSTEM = "You plan trips."
QUESTION = "What is the weather in Paris?"
ANSWER = fake_llm.ANSWER
CALL_ID = fake_llm.CALL_ID
FAILURE = "the booking service is down"


@dataclass(frozen=True)
class Run:
    """One producer run (runs.json): producers/`script` `args` with venv `venv`'s python."""

    label: str
    venv: str
    script: str
    package: str
    generation: str
    # the instrumentation scope of its LLM spans: proof of who made them
    scope: str
    args: tuple = ()
    fail: bool = False
    # the messages come as OTLP log records (GenAI events), not span attributes
    logs: bool = False
    # server-side mapping gaps, by check
    gaps: dict = field(default_factory=dict, hash=False, compare=False)


# Gaps in our server's mapping, found with these packages: strict xfails, by run and check
# ({"run-label": {"check": "why"}}). Empty: the three found (OpenLLMetry's tool calls beside a
# gen_ai.choice message, OpenInference's llm.finish_reason, OpenLLMetry's empty streamed text
# part) are fixed in mapping/messages.rs.
GAPS = {}


def load_runs():
    spec = json.loads((HERE / "runs.json").read_text())
    return [
        Run(
            label=r["label"],
            venv=r["venv"],
            script=r["script"],
            package=r["package"],
            generation=r["generation"],
            scope=r["scope"],
            args=tuple(r.get("args", ())),
            fail=bool(r.get("fail")),
            logs=bool(r.get("logs")),
            gaps=GAPS.get(r["label"], {}),
        )
        for r in spec["runs"]
    ]


RUNS = load_runs()
BY_LABEL = {r.label: r for r in RUNS}


def venv_python(venv):
    return REPO / "target/python" / venv / "bin/python"


def producer_env():
    env = offline_env(drop=("AGENTOPS_", "OTEL_", "OPENAI_", "TRACELOOP_"))
    env["OPENAI_API_KEY"] = "sk-fake-not-a-real-key"
    return env


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """Our server (quiet window 2 s), the fake LLM, and every producer run, all at once.

    Yields {"server", "fake", "runs": {label: {"trace_id", "session_id", "exited_at"} or
    {"error"}}}."""
    root = tmp_path_factory.mktemp("agentops-genai")
    server = Server(
        server_binary(),
        root / "data",
        root / "server.log",
        extra_args=["--session-quiet-seconds", str(QUIET_SECONDS), "--grpc-listen", "off"],
    )
    server.start()
    fake, port = fake_llm.start()
    llm_base_url = f"http://127.0.0.1:{port}/v1"
    results = {}
    started = {}
    try:
        for run in RUNS:
            python = venv_python(run.venv)
            if not (python.is_file() and os.access(python, os.X_OK)):
                results[run.label] = {
                    "error": f"no Python venv {run.venv} at {python}: run `scripts/python-env` first"
                }
                continue
            out = open(root / f"{run.label}.out", "w+")
            err = open(root / f"{run.label}.err", "w+")
            started[run.label] = (
                subprocess.Popen(
                    [
                        str(python),
                        str(PRODUCERS / run.script),
                        "--endpoint", server.url,
                        "--api-key", API_KEY,
                        "--llm-base-url", llm_base_url,
                        "--label", run.label,
                        *run.args,
                    ],
                    env=producer_env(),
                    cwd=tempfile.gettempdir(),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    text=True,
                ),
                out,
                err,
            )
        deadline = time.monotonic() + RUN_TIMEOUT
        for label, (process, out, err) in started.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            exited_at = time.monotonic()
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
            out.close()
            err.close()
            trace = [line.split()[1] for line in stdout.splitlines() if line.startswith("TRACE ")]
            if process.returncode != 0 or not trace:
                results[label] = {
                    "error": f"{BY_LABEL[label].script} {' '.join(BY_LABEL[label].args)} ({BY_LABEL[label].venv}) "
                    f"exited {process.returncode}\n--- stdout\n{stdout[-2000:]}\n--- stderr\n{stderr[-4000:]}"
                    f"\n--- server log\n{server.log_tail()}"
                }
                continue
            trace_id = trace[-1]
            results[label] = {
                "trace_id": trace_id,
                # a plain trace's session: its trace id written as a UUID
                "session_id": str(uuid.UUID(hex=trace_id)),
                "exited_at": exited_at,
                "stderr": stderr,
            }
        yield {"server": server, "fake": fake, "runs": results}
    finally:
        for process, out, err in started.values():
            if process.poll() is None:
                process.kill()
        fake.shutdown()
        fake.server_close()
        server.stop()


def ended_session(suite, label):
    """The run's session once it has ended (polled up to END_TIMEOUT), and how long after the
    producer exited it was seen ended."""
    result = suite["runs"][label]
    if "error" in result:
        pytest.fail(result["error"], pytrace=False)
    server = suite["server"]
    deadline = time.monotonic() + END_TIMEOUT
    last = None
    while time.monotonic() < deadline:
        last = _get(server, result)
        if last and last.get("end_time") and last.get("end_state"):
            return last, time.monotonic() - result["exited_at"]
        time.sleep(0.2)
    pytest.fail(
        f"session {result['session_id']} of {label} did not end within {END_TIMEOUT}s "
        f"(quiet window {QUIET_SECONDS}s): {json.dumps(last)[:1500]}\n{server.log_tail()}",
        pytrace=False,
    )


def _get(server, result):
    import requests

    r = requests.get(
        f"{server.url}/api/v1/sessions/{result['session_id']}",
        headers={"X-Agentops-Api-Key": API_KEY},
        timeout=10,
    )
    return r.json() if r.status_code == 200 else None


def llm_events(session):
    events = [e for e in session["events"] if e["kind"] == "llms"]
    assert len(events) == 2, f"two LLM events: {[(e['kind'], e['name']) for e in session['events']]}"
    return sorted(events, key=lambda e: e["start_time"])


def tool_event(session):
    tools = [e for e in session["events"] if e["kind"] == "tools"]
    assert [e["name"] for e in tools] == ["execute_tool get_weather"], [(e["kind"], e["name"]) for e in session["events"]]
    return tools[0]


def texts(messages, role=None):
    """The text parts' contents of `messages` (of `role`)."""
    return [
        p.get("content")
        for m in messages
        if role is None or m["role"] == role
        for p in m["parts"]
        if p["type"] == "text"
    ]


def parts(messages, kind):
    return [p for m in messages for p in m["parts"] if p["type"] == kind]


def gap(check):
    """The runs as params, those with a server-side gap in `check` marked strict xfail."""
    return [
        pytest.param(
            r.label,
            id=r.label,
            marks=[pytest.mark.xfail(strict=True, raises=AssertionError, reason=r.gaps[check])] if check in r.gaps else [],
        )
        for r in RUNS
    ]


LABELS = [pytest.param(r.label, id=r.label) for r in RUNS]


@pytest.mark.parametrize("label", LABELS)
def test_session_ends_named_with_tokens_and_cost(suite, label):
    run = BY_LABEL[label]
    session, after_exit = ended_session(suite, label)
    if run.fail:
        assert session["end_state"] == "Fail", session
        assert FAILURE in (session["end_state_reason"] or ""), session["end_state_reason"]
    else:
        assert session["end_state"] == "Success", (session["end_state"], session["end_state_reason"])
    # ended by the quiet window: not before it, and not long after (polling, 2 cores)
    assert after_exit < QUIET_SECONDS + 8, f"seen ended {after_exit:.1f}s after the producer exited"
    assert session["name"] == f"trip-planner-{label}"

    events = llm_events(session)
    assert [(e["input_tokens"], e["output_tokens"]) for e in events] == [fake_llm.USAGE_TOOL_CALL, fake_llm.USAGE_ANSWER]
    assert session["input_tokens"] == fake_llm.TOTAL_INPUT_TOKENS
    assert session["output_tokens"] == fake_llm.TOTAL_OUTPUT_TOKENS
    for e in events:
        assert e["model"] == fake_llm.MODEL, e["model"]
        assert e["provider"] == "openai", e["provider"]
        assert e["cost"] and e["cost"] > 0, f"{e['model']} is priced: {e['cost']}"
        # the package made this span (no stand-in): its own instrumentation scope
        assert e["attributes"].get("otel.scope.name") == run.scope, e["attributes"].get("otel.scope.name")
    assert session["cost"] > 0
    assert session["cost"] == pytest.approx(sum(e["cost"] for e in events))
    # the session ends at its last event's end; it starts at the root span
    ends = [e["end_time"] for e in session["events"] if e["end_time"]]
    assert session["end_time"].replace("+00:00", "Z")[:23] == max(ends).replace("+00:00", "Z")[:23]
    root = [e for e in session["events"] if not e["parent_id"]]
    assert [e["name"] for e in root] == [f"trip-planner-{label}"]
    if run.fail:
        assert root[0]["status"] == "error"
    if run.logs:
        # GenAI events as OTLP log records, each tied to its LLM call's event
        records = session["log_records"]
        names = [r["event_name"] for r in records]
        assert names.count("gen_ai.choice") == 2, names
        assert names.count("gen_ai.user.message") == 2, names
        assert {r["event_id"] for r in records} == {e["id"] for e in events}, records


@pytest.mark.parametrize("label", LABELS)
def test_messages_as_text(suite, label):
    session, _ = ended_session(suite, label)
    first, second = llm_events(session)
    for e in (first, second):
        assert e["messages"], f"{e['name']} has messages: {json.dumps(e)[:1500]}"
        inputs = e["messages"]["input"]
        assert [m["role"] for m in inputs[:2]] == ["system", "user"], inputs
        assert texts(inputs, "system") == [SYSTEM]
        assert texts(inputs, "user") == [QUESTION]
        for m in e["messages"]["input"] + e["messages"]["output"]:
            assert m["parts"] or m["role"] == "assistant", m
            for text in texts([m]):
                # text, not a message or list of them serialised as JSON
                assert not text.lstrip().startswith(("{", "[")) or m["role"] == "tool", text
                assert '"role"' not in text and '"parts"' not in text, text
    assert texts(second["messages"]["output"]) == [ANSWER]
    assert [m["role"] for m in second["messages"]["output"]] == ["assistant"]
    # the second call's history: the assistant's tool call, then the tool's result
    history = second["messages"]["input"]
    assert [m["role"] for m in history] == ["system", "user", "assistant", "tool"], history
    assert [(p["id"], p["name"], p["arguments"]) for p in parts([history[2]], "tool_call")] == [
        (CALL_ID, "get_weather", {"city": "Paris"})
    ]
    result = history[3]["parts"]
    if label == "openllmetry-legacy-events":
        # Not a server gap: OpenLLMetry's gen_ai.tool.message event has no tool_call_id at all
        # (its MessageEvent has only content, role and tool_calls; body {"content": "..."}), so
        # the result is the tool message's text.
        assert result == [{"type": "text", "content": fake_llm_tool_result()}], result
    else:
        assert [p["type"] for p in result] == ["tool_call_response"], result
        assert result[0]["id"] == CALL_ID
        assert result[0]["response"] in (
            {"city": "Paris", "forecast": "sunny", "temperature_c": 22},
            fake_llm_tool_result(),
        ), result


def fake_llm_tool_result():
    return json.dumps({"city": "Paris", "forecast": "sunny", "temperature_c": 22})


@pytest.mark.parametrize("label", gap("tool_calls"))
def test_tool_call_asked_and_linked_both_ways(suite, label):
    session, _ = ended_session(suite, label)
    first, second = llm_events(session)
    tool = tool_event(session)
    assert tool["attributes"]["gen_ai.tool.call.id"] == CALL_ID
    calls = parts(first["messages"]["output"], "tool_call")
    assert [(p["id"], p["name"], p["arguments"]) for p in calls] == [(CALL_ID, "get_weather", {"city": "Paris"})], first[
        "messages"
    ]["output"]
    link = lambda e, d: {"call_id": CALL_ID, "event_id": e["id"], "direction": d}  # noqa: E731
    assert first["tool_links"] == [link(tool, "calls")]
    assert tool["tool_links"] == [link(first, "called_by")]
    assert second["tool_links"] == []
    # the same on the event tree and on each event's own detail
    tree = {n["id"]: n for n in suite["server"].get(f"/api/v1/sessions/{session['id']}?events=tree")["event_tree"]}
    assert tree[first["id"]]["tool_links"] == [link(tool, "calls")]
    assert tree[tool["id"]]["tool_links"] == [link(first, "called_by")]
    for e, want in ((first, [link(tool, "calls")]), (tool, [link(first, "called_by")])):
        detail = suite["server"].get(f"/api/v1/sessions/{session['id']}/events/{e['id']}")
        assert detail["tool_links"] == want, (e["name"], detail["tool_links"])


@pytest.mark.parametrize("label", gap("empty_parts"))
def test_no_empty_text_parts(suite, label):
    session, _ = ended_session(suite, label)
    for e in llm_events(session):
        for m in e["messages"]["input"] + e["messages"]["output"]:
            assert all(t and t.strip() for t in texts([m])), (e["name"], m)


@pytest.mark.parametrize("label", gap("finish_reasons"))
def test_finish_reasons(suite, label):
    session, _ = ended_session(suite, label)
    first, second = llm_events(session)
    reasons = [[m.get("finish_reason") for m in e["messages"]["output"]] for e in (first, second)]
    # OpenLLMetry 0.62 writes the newest conventions' "tool_call"; the others OpenAI's "tool_calls"
    assert reasons[0] in (["tool_calls"], ["tool_call"]), reasons
    assert reasons[1] == ["stop"], reasons


def test_every_producer_ran_against_the_fake_only(suite):
    """Each run made its two chat completions to the fake LLM, and the fake saw the tool's result."""
    requests = suite["fake"].requests
    ran = [r for r in RUNS if "error" not in suite["runs"][r.label]]
    assert len(requests) == 2 * len(ran), [q["path"] for q in requests]
    assert all(q["path"] == "/v1/chat/completions" for q in requests)
    with_result = [q for q in requests if any(m.get("role") == "tool" for m in q["body"]["messages"])]
    assert len(with_result) == len(ran)
    missing = [r.label for r in RUNS if "error" in suite["runs"][r.label]]
    assert not missing, "\n\n".join(suite["runs"][label]["error"] for label in missing)
