"""agentops 0.3.x: one session spread over two processes, as a multi-process agent does it.

`v03_inherit.py start`: starts a session, records 30 actions (more than the client's 25-event
batch), and exits without ending it. `v03_inherit.py resume SESSION_ID`: starts the same session
again with inherited_session_id, records one tool, and ends it with a video link.
Each prints one JSON line.
"""

import json
import os
import sys

import agentops
from agentops import ActionEvent, ToolEvent

mode = sys.argv[1]
inherited = sys.argv[2] if mode == "resume" else None
session = agentops.init(
    api_key=os.environ["AGENTOPS_API_KEY"],
    endpoint=os.environ["AGENTOPS_API_ENDPOINT"],
    tags=["inherit", mode],
    inherited_session_id=inherited,
    instrument_llm_calls=False,
    max_wait_time=200,
)
if session is None:
    sys.exit("agentops.init did not start a session")

if mode == "start":
    for i in range(30):
        session.record(ActionEvent(action_type=f"step-{i:02d}", params={"i": i}, returns=i * i))
    # Leave the session open: the client flushes its events at exit but never ends it.
    print(json.dumps({"session_id": str(session.session_id)}))
else:
    tool = ToolEvent(name="resume-tool", params={"resumed": True}, returns="ok")
    session.record(tool)
    cost = session.end_session("Success", end_state_reason="resumed and done", video="https://video.example/run.mp4")
    print(json.dumps({"session_id": str(session.session_id), "tool": str(tool.id), "token_cost": str(cost)}))
