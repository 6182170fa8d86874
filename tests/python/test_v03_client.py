"""agentops==0.3.26 (the AgentOps v2 REST API) against our server: what the real client sends
is accepted and stored right, checked through the read API."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal

import pytest
import requests

from conftest import API_KEY, run_client

# Builtin prices, US dollars per million tokens (crates/agentops-core/data/prices.json).
GPT_4O_MINI = (0.15, 0.6)


def cost(model_price, prompt_tokens, completion_tokens):
    return (prompt_tokens * model_price[0] + completion_tokens * model_price[1]) / 1e6


def by_id(detail):
    return {e["id"]: e for e in detail["events"]}


def by_name(detail):
    return {e["name"]: e for e in detail["events"] if e["name"]}


@pytest.fixture(scope="module")
def single(server, v03_single):
    return server.session(v03_single["session_id"])


# --- single-session mode -----------------------------------------------------------------


def test_session_is_listed_with_its_end_state_and_reason(server, v03_single):
    listed = server.sessions()[v03_single["session_id"]]
    assert listed["end_state"] == "Success"
    assert listed["end_state_reason"] == "all good"
    start = datetime.fromisoformat(listed["start_time"])
    end = datetime.fromisoformat(listed["end_time"])
    assert start.utcoffset().total_seconds() == 0
    assert start <= end


def test_tags_follow_add_set_add(single):
    # default_tags at init, add_tags, then set_tags replaces them all, then add_tags appends.
    assert single["tags"] == ["replaced-1", "replaced-2", "final-tag"]


def test_host_env_is_kept(single):
    assert single["host_env"]["OS"]["OS"] == "Linux"
    assert "Installed Packages" in single["host_env"]


def test_every_event_is_stored_once_with_its_kind(single, v03_single):
    kinds = Counter(e["kind"] for e in single["events"])
    # actions: search_web, decorated-action, research; tools: calculator, decorated-tool,
    # lookup; llms: 3 by hand; errors: the ValueError by hand + the failing decorated action.
    assert kinds == {"actions": 3, "tools": 3, "llms": 3, "errors": 2}
    assert single["event_count"] == 11
    assert all(e["session_id"] == v03_single["session_id"] for e in single["events"])
    events = by_id(single)
    for key in ("action", "tool", "llm_text", "llm_chat", "llm_priced", "error"):
        assert v03_single[key] in events, key
    starts = [e["start_time"] for e in single["events"]]
    assert starts == sorted(starts)


def test_action_event_fields(single, v03_single):
    e = by_id(single)[v03_single["action"]]
    assert e["kind"] == "actions"
    assert e["name"] == "search_web"
    assert e["params"] == {"query": "weather in Paris"}
    assert e["returns"] == "sunny, 21C"
    assert e["attributes"]["logs"] == "looked up weather"
    assert e["start_time"] <= e["end_time"]


def test_tool_event_fields(single, v03_single):
    e = by_id(single)[v03_single["tool"]]
    assert e["kind"] == "tools"
    assert e["name"] == "calculator"
    assert e["params"] == {"expr": "2+2"}
    assert e["returns"] == "4"
    assert e["attributes"]["logs"] == {"engine": "python"}


def test_llm_event_with_text_prompt(single, v03_single):
    e = by_id(single)[v03_single["llm_text"]]
    assert e["kind"] == "llms"
    assert e["model"] == "gpt-4o-mini"
    assert e["prompt"] == "What is 2+2?"
    assert e["completion"] == "4"
    assert (e["input_tokens"], e["output_tokens"]) == (7, 1)
    assert e["params"] == {"temperature": 0.0}
    assert e["cost"] == pytest.approx(cost(GPT_4O_MINI, 7, 1), rel=1e-9)


def test_llm_event_with_chat_messages(single, v03_single):
    e = by_id(single)[v03_single["llm_chat"]]
    assert e["prompt"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "Say hello — auf Deutsch"},
    ]
    assert e["completion"] == {"role": "assistant", "content": "Hallo! 👋 Grüße"}
    assert (e["input_tokens"], e["output_tokens"]) == (1000, 200)
    assert e["cost"] == pytest.approx(cost(GPT_4O_MINI, 1000, 200), rel=1e-9)


def test_llm_cost_sent_by_the_client_is_kept(single, v03_single):
    e = by_id(single)[v03_single["llm_priced"]]
    assert e["model"] == "gpt-4o"
    assert (e["input_tokens"], e["output_tokens"]) == (11, 2)
    assert e["cost"] == 0.0001  # not the table's 11*2.5+2*10 per million


def test_session_tokens_and_cost(server, single, v03_single):
    expected = cost(GPT_4O_MINI, 7, 1) + cost(GPT_4O_MINI, 1000, 200) + 0.0001
    assert (single["input_tokens"], single["output_tokens"]) == (1018, 203)
    assert single["cost"] == pytest.approx(expected, rel=1e-9)
    listed = server.sessions()[v03_single["session_id"]]
    assert listed["cost"] == pytest.approx(expected, rel=1e-9)
    # update_session's answer, as the client parsed it (Decimal of "token_cost").
    assert Decimal(v03_single["token_cost"]) == Decimal("0.00037165")


def test_error_event_fields(single, v03_single):
    e = by_id(single)[v03_single["error"]]
    assert e["kind"] == "errors"
    assert e["name"] == "ValueError"
    assert e["status"] == "error"
    assert e["status_message"] == "bad value in search"
    assert e["attributes"]["code"] == "E42"
    assert e["attributes"]["error_type"] == "ValueError"
    assert "raise ValueError" in e["attributes"]["logs"]
    # The 0.3.26 client serialises ErrorEvent.trigger_event (an Event object) as "" on the wire
    # (helpers.filter_unjsonable), so the link to the action is lost before it reaches us.
    assert e["parent_id"] is None


def test_error_from_a_failing_decorated_action(single):
    errors = [e for e in single["events"] if e["kind"] == "errors" and e["name"] == "RuntimeError"]
    assert len(errors) == 1
    assert errors[0]["status_message"] == "kaboom"
    assert "kaboom" in errors[0]["attributes"]["logs"]
    # The failing action itself is not recorded by the client, only the error.
    assert "failing-action" not in by_name(single)


def test_record_action_and_record_tool_decorators(single):
    named = by_name(single)
    action = named["decorated-action"]
    assert action["kind"] == "actions"
    assert action["params"] == {"goal": "otel", "steps": 2}
    assert action["returns"] == ["step 1 of otel", "step 2 of otel"]
    tool = named["decorated-tool"]
    assert tool["kind"] == "tools"
    assert tool["params"] == {"a": 6, "b": 7}
    assert tool["returns"] == 42


def test_agents_and_agent_ids_on_events(single, v03_single):
    agents = {a["name"]: a["id"] for a in single["agents"]}
    assert agents == {
        "researcher": v03_single["researcher_agent"],
        "planner": v03_single["planner_agent"],
    }
    named = by_name(single)
    # `lookup` ran inside Researcher.research: the client found the agent on the call stack.
    assert named["lookup"]["agent_id"] == v03_single["researcher_agent"]
    assert named["lookup"]["returns"] == "notes on otel"
    assert named["calculator"]["agent_id"] is None


# --- multi-session mode ------------------------------------------------------------------

MULTI = {
    # label: (n, end_state, end_state_reason, own tag)
    "success": (1, "Success", "done", "first"),
    "fail": (2, "Fail", "the agent gave up", "second"),
    "indeterminate": (3, "Indeterminate", None, "third"),
}


@pytest.mark.parametrize("label", list(MULTI))
def test_concurrent_sessions_end_states_counts_and_costs(server, v03_multi, label):
    n, end_state, reason, tag = MULTI[label]
    ids = v03_multi[label]
    detail = server.session(ids["session_id"])
    assert detail["end_state"] == end_state
    assert detail["end_state_reason"] == reason
    assert sorted(detail["tags"]) == sorted(["v03-multi", tag])
    kinds = Counter(e["kind"] for e in detail["events"])
    assert kinds == {"llms": n, "tools": n + 1}
    assert detail["event_count"] == 2 * n + 1
    assert all(e["session_id"] == ids["session_id"] for e in detail["events"])
    prompts = sorted(e["prompt"] for e in detail["events"] if e["kind"] == "llms")
    assert prompts == [f"{label} question {i}" for i in range(n)]
    fetched = sorted(e["params"]["url"] for e in detail["events"] if e["name"] == "fetch")
    assert fetched == [f"https://example.invalid/{label}/{i}" for i in range(n)]
    assert (detail["input_tokens"], detail["output_tokens"]) == (100 * n * n, 10 * n * n)
    expected = n * cost(GPT_4O_MINI, 100 * n, 10 * n)
    assert detail["cost"] == pytest.approx(expected, rel=1e-9)
    assert float(Decimal(ids["token_cost"])) == pytest.approx(expected, rel=1e-9)
    assert detail["agents"] == [{"id": ids["agent_id"], "name": f"{label}-agent"}]


def test_concurrent_sessions_are_distinct_and_overlap(server, v03_multi):
    ids = [v03_multi[label]["session_id"] for label in MULTI]
    assert len(set(ids)) == 3
    details = [server.session(i) for i in ids]
    # All three were open at once: each started before any ended.
    assert max(d["start_time"] for d in details) < min(d["end_time"] for d in details)


# --- the read API ------------------------------------------------------------------------


def test_read_api_requires_the_api_key(server, v03_single):
    server.get("/api/v1/sessions", headers={}, expect=401)
    server.get(
        f"/api/v1/sessions/{v03_single['session_id']}",
        headers={"X-Agentops-Api-Key": "00000000-0000-4000-8000-000000000000"},
        expect=401,
    )
    server.get("/api/v1/sessions/6f0e7a2b-0000-4000-8000-000000000000", expect=404)


def test_read_api_with_tokens(server, v03_single):
    # A project token (what /v3/auth/token gives the 0.4 client) reads the project's sessions.
    project = {"Authorization": f"Bearer {server.token()}"}
    listed = server.get("/api/v1/sessions", headers=project)["sessions"]
    assert v03_single["session_id"] in {s["id"] for s in listed}
    # A session token (what /v2/create_session gives the 0.3 client) reads only its session.
    own_id = "5b1f3c2a-9d4e-4f6a-8b7c-0d1e2f3a4b5c"
    created = requests.post(
        f"{server.url}/v2/create_session",
        json={"session": {"session_id": own_id, "init_timestamp": "2026-11-22T01:30:22.721555+00:00"}},
        headers={"X-Agentops-Api-Key": API_KEY},
        timeout=10,
    )
    assert created.status_code == 200, created.text
    own = {"Authorization": f"Bearer {created.json()['jwt']}"}
    assert server.get(f"/api/v1/sessions/{own_id}", headers=own)["id"] == own_id
    server.get("/api/v1/sessions", headers=own, expect=403)
    server.get(f"/api/v1/sessions/{v03_single['session_id']}", headers=own, expect=403)


def test_session_list_is_newest_first_and_limited(server, v03_single, v03_multi):
    listed = server.get("/api/v1/sessions?limit=1000")["sessions"]
    starts = [s["start_time"] for s in listed]
    assert starts == sorted(starts, reverse=True)
    assert len(server.get("/api/v1/sessions?limit=2")["sessions"]) == 2
    server.get("/api/v1/sessions?limit=0", expect=400)
    server.get("/api/v1/sessions?limit=lots", expect=400)


# --- one session over two processes (inherited_session_id) -------------------------------


def test_inherited_session_over_two_processes(server, v03_inherit):
    session_id = v03_inherit["start"]["session_id"]
    assert v03_inherit["resume"]["session_id"] == session_id
    detail = server.session(session_id)
    # 30 actions (two create_events batches of the client) + 1 tool from the second process.
    assert Counter(e["kind"] for e in detail["events"]) == {"actions": 30, "tools": 1}
    steps = sorted(e["name"] for e in detail["events"] if e["kind"] == "actions")
    assert steps == [f"step-{i:02d}" for i in range(30)]
    assert all(e["returns"] == e["params"]["i"] ** 2 for e in detail["events"] if e["kind"] == "actions")
    assert by_id(detail)[v03_inherit["resume"]["tool"]]["name"] == "resume-tool"
    # The second create_session (same id, later init_timestamp) keeps the first start time.
    first_event = min(e["start_time"] for e in detail["events"])
    assert detail["start_time"] <= first_event
    assert detail["end_state"] == "Success"
    assert detail["end_state_reason"] == "resumed and done"
    assert detail["video"] == "https://video.example/run.mp4"
    assert sorted(detail["tags"]) == ["inherit", "resume"]
    assert Decimal(v03_inherit["resume"]["token_cost"]) == 0


# --- LLM calls recorded by the client's own OpenAI instrumentation ------------------------


def test_instrumented_openai_calls(server, v03_openai, openai_stub):
    assert v03_openai["answers"] == ["Echo: Say hello", "Echo: Say goodbye"]
    asked = [r["body"]["messages"][-1]["content"] for r in openai_stub.requests]
    assert "Say hello" in asked and "Say goodbye" in asked
    detail = server.session(v03_openai["session_id"])
    assert detail["end_state"] == "Success"
    assert detail["tags"] == ["openai"]
    llms = detail["events"]
    assert [e["kind"] for e in llms] == ["llms", "llms"]
    for event, question in zip(llms, ("Say hello", "Say goodbye")):
        assert event["model"] == openai_stub.MODEL  # the response's model, a dated snapshot
        assert event["prompt"] == [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": question},
        ]
        assert event["completion"]["role"] == "assistant"
        assert event["completion"]["content"] == f"Echo: {question}"
        assert event["params"]["temperature"] == 0.2
        assert (event["input_tokens"], event["output_tokens"]) == (12, 5)
        # gpt-4o-mini-2024-07-18 is priced as gpt-4o-mini (longest known prefix).
        assert event["cost"] == pytest.approx(cost(GPT_4O_MINI, 12, 5), rel=1e-9)
    assert (detail["input_tokens"], detail["output_tokens"]) == (24, 10)
    assert detail["cost"] == pytest.approx(2 * cost(GPT_4O_MINI, 12, 5), rel=1e-9)
    assert float(Decimal(v03_openai["token_cost"])) == pytest.approx(2 * cost(GPT_4O_MINI, 12, 5))


# --- several client processes at once --------------------------------------------------------


def test_four_client_processes_at_once(server):
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda _: run_client(server, "v03", "v03_single.py"), range(4)))
    assert len({r["session_id"] for r in runs}) == 4
    for run in runs:
        detail = server.session(run["session_id"])
        assert detail["event_count"] == 11
        assert detail["end_state"] == "Success"
        assert (detail["input_tokens"], detail["output_tokens"]) == (1018, 203)
        assert Decimal(run["token_cost"]) == Decimal("0.00037165")
        assert {e["session_id"] for e in detail["events"]} == {run["session_id"]}
