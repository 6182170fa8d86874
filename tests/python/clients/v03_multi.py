"""agentops 0.3.x, multi-session mode: three sessions open at once, events recorded on each
(by hand and through decorators with `session=`), each ending in a different end state.
Prints one JSON line with the ids it created.
"""

import json
import os
import sys

import agentops
from agentops import LLMEvent, ToolEvent

agentops.init(
    api_key=os.environ["AGENTOPS_API_KEY"],
    endpoint=os.environ["AGENTOPS_API_ENDPOINT"],
    default_tags=["v03-multi"],
    auto_start_session=False,
    instrument_llm_calls=False,
    max_wait_time=200,
)

sessions = {
    "success": agentops.start_session(tags=["first"]),
    "fail": agentops.start_session(tags=["second"]),
    "indeterminate": agentops.start_session(tags=["third"]),
}
if any(s is None for s in sessions.values()):
    sys.exit("start_session failed")


@agentops.record_tool("fetch")
def fetch(url):
    return f"contents of {url}"


out = {}
for n, (label, session) in enumerate(sessions.items(), start=1):
    # n LLM calls of 100*n prompt and 10*n completion tokens on gpt-4o-mini, n tools.
    for i in range(n):
        session.record(
            LLMEvent(
                prompt=f"{label} question {i}",
                completion=f"{label} answer {i}",
                prompt_tokens=100 * n,
                completion_tokens=10 * n,
                model="gpt-4o-mini",
            )
        )
        fetch(f"https://example.invalid/{label}/{i}", session=session)
    session.record(ToolEvent(name=f"{label}-tool", params={"session": label}))
    agent_id = session.create_agent(f"{label}-agent", None)
    out[label] = {"session_id": str(session.session_id), "agent_id": agent_id}

costs = {
    "success": sessions["success"].end_session("Success", end_state_reason="done"),
    "fail": sessions["fail"].end_session("Fail", end_state_reason="the agent gave up"),
    "indeterminate": sessions["indeterminate"].end_session("Indeterminate"),
}
for label, cost in costs.items():
    out[label]["token_cost"] = None if cost is None else str(cost)
print(json.dumps(out))
