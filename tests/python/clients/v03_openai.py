"""agentops 0.3.x instrumenting the real openai package: two chat completions, made to the
test's local stub of the OpenAI API (OPENAI_BASE_URL), recorded by the client as LLM events.
Prints one JSON line.
"""

import json
import os
import sys

import agentops
import openai

session = agentops.init(
    api_key=os.environ["AGENTOPS_API_KEY"],
    endpoint=os.environ["AGENTOPS_API_ENDPOINT"],
    default_tags=["openai"],
    instrument_llm_calls=True,
    max_wait_time=200,
)
if session is None:
    sys.exit("agentops.init did not start a session")

client = openai.OpenAI()  # OPENAI_BASE_URL and OPENAI_API_KEY come from the environment
answers = []
for question in ("Say hello", "Say goodbye"):
    response = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": question}],
        temperature=0.2,
    )
    answers.append(response.choices[0].message.content)

cost = session.end_session("Success")
print(json.dumps({"session_id": str(session.session_id), "answers": answers, "token_cost": str(cost)}))
