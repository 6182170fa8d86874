"""agentops 0.3.x, single-session mode: every event kind, the decorators, agents, tags, and
the end state Success. Prints one JSON line with the ids it created.

Run with the v03 venv's python; AGENTOPS_API_KEY and AGENTOPS_API_ENDPOINT name our server.
"""

import json
import os
import sys

import agentops
from agentops import ActionEvent, ErrorEvent, LLMEvent, ToolEvent

session = agentops.init(
    api_key=os.environ["AGENTOPS_API_KEY"],
    endpoint=os.environ["AGENTOPS_API_ENDPOINT"],
    default_tags=["v03", "single"],
    instrument_llm_calls=False,
    max_wait_time=200,
)
if session is None:
    sys.exit("agentops.init did not start a session: create_session failed")

ids = {"session_id": str(session.session_id)}

# One event of each kind, recorded by hand.
action = ActionEvent(
    action_type="search_web",
    params={"query": "weather in Paris"},
    returns="sunny, 21C",
    logs="looked up weather",
)
agentops.record(action)
ids["action"] = str(action.id)

tool = ToolEvent(name="calculator", params={"expr": "2+2"}, returns="4", logs={"engine": "python"})
agentops.record(tool)
ids["tool"] = str(tool.id)

llm_text = LLMEvent(
    prompt="What is 2+2?",
    completion="4",
    prompt_tokens=7,
    completion_tokens=1,
    model="gpt-4o-mini",
    params={"temperature": 0.0},
)
agentops.record(llm_text)
ids["llm_text"] = str(llm_text.id)

llm_chat = LLMEvent(
    prompt=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "Say hello — auf Deutsch"}],
    completion={"role": "assistant", "content": "Hallo! 👋 Grüße"},
    prompt_tokens=1000,
    completion_tokens=200,
    model="gpt-4o-mini",
)
agentops.record(llm_chat)
ids["llm_chat"] = str(llm_chat.id)

llm_priced = LLMEvent(prompt="q", completion="a", prompt_tokens=11, completion_tokens=2, model="gpt-4o", cost=0.0001)
agentops.record(llm_priced)
ids["llm_priced"] = str(llm_priced.id)

try:
    raise ValueError("bad value in search")
except ValueError as exc:
    error = ErrorEvent(trigger_event=action, exception=exc, code="E42")
agentops.record(error)
ids["error"] = str(error.id)


# Decorators: the events they record carry the function's arguments and result.
@agentops.record_action("decorated-action")
def plan(goal, steps=2):
    return [f"step {i} of {goal}" for i in range(1, steps + 1)]


@agentops.record_tool("decorated-tool")
def multiply(a, b):
    return a * b


plan("otel")
multiply(6, 7)


@agentops.record_action("failing-action")
def explode():
    raise RuntimeError("kaboom")


try:
    explode()
except RuntimeError:
    pass


# Agents: a tracked class (its decorated methods carry its agent id) and create_agent.
@agentops.record_tool("lookup")
def lookup(topic):
    return f"notes on {topic}"


@agentops.track_agent(name="researcher")
class Researcher:
    @agentops.record_action("research")
    def research(self, topic):
        # The client finds the agent id by walking the call stack up to a frame whose `self`
        # is a tracked agent: so events recorded *inside* an agent method carry its id.
        return lookup(topic)


researcher = Researcher()
researcher.research("otel")
ids["researcher_agent"] = researcher.agentops_agent_id
ids["planner_agent"] = agentops.create_agent("planner")

# Tags: added, replaced, added again.
agentops.add_tags(["added-tag"])
agentops.set_tags(["replaced-1", "replaced-2"])
agentops.add_tags(["final-tag"])

# session.end_session answers the token cost the server computed (agentops.end_session drops it).
cost = session.end_session("Success", end_state_reason="all good")
ids["token_cost"] = None if cost is None else str(cost)
print(json.dumps(ids))
