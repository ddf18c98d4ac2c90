"""Real clients through `tentalis serve`'s proxy: LangChain and LiteLLM, one row per feature.

    pip install langchain-openai litellm          # not tentalis dependencies
    PROXY=http://127.0.0.1:8200/v1 python examples/client_probe.py probe.json

Each row prints ok with what came back, or the error; the rows are written to the JSON
file named on the command line.
"""
import json
import os
import sys
import time

from pydantic import BaseModel

BASE = os.environ["PROXY"]
MODEL = "smollm2-135m-instruct"
rows = []


def row(name, fn):
    t0 = time.perf_counter()
    try:
        out = fn()
        rows.append((name, "ok", out))
    except Exception as exc:  # a row that fails is the finding
        rows.append((name, "ERROR", f"{type(exc).__name__}: {str(exc)[:300]}"))
    print(f"{name}: {rows[-1][1]} ({time.perf_counter() - t0:.1f}s) {str(rows[-1][2])[:300]}",
          flush=True)


from langchain_core.tools import tool  # noqa: E402
from langchain_openai import ChatOpenAI  # noqa: E402

llm = ChatOpenAI(base_url=BASE, api_key="none", model=MODEL, max_tokens=48, temperature=0)


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


class City(BaseModel):
    city: str
    temp_c: int


row("langchain invoke", lambda: llm.invoke("Say hi").content)
row("langchain stream", lambda: [c.content for c in llm.stream("Count to three")][:8])
row("langchain bind_tools(tool_choice=get_weather)", lambda: llm.bind_tools(
    [get_weather], tool_choice="get_weather").invoke("Weather in Paris?").tool_calls)
row("langchain bind_tools auto", lambda: (lambda m: (m.tool_calls, m.content))(
    llm.bind_tools([get_weather]).invoke("What is the weather in Paris? Use the tool.")))
row("langchain with_structured_output(json_schema)", lambda: llm.with_structured_output(
    City, method="json_schema").invoke("Paris is 21 degrees. Give city and temp_c."))
row("langchain with_structured_output(function_calling)", lambda: llm.with_structured_output(
    City, method="function_calling").invoke("Paris is 21 degrees."))
row("langchain json_mode", lambda: llm.with_structured_output(
    None, method="json_mode").invoke("Return a JSON object with key a = 1."))

import litellm  # noqa: E402

kw = dict(model=f"openai/{MODEL}", api_base=BASE, api_key="none", max_tokens=48)
row("litellm completion", lambda: litellm.completion(
    messages=[{"role": "user", "content": "Say hi"}], **kw).choices[0].message.content)
row("litellm stream", lambda: "".join(
    (c.choices[0].delta.content or "") for c in litellm.completion(
        messages=[{"role": "user", "content": "Count to three"}], stream=True, **kw)))
row("litellm tools required", lambda: litellm.completion(
    messages=[{"role": "user", "content": "Weather in Paris?"}],
    tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}},
        "required": ["city"]}}}], tool_choice="required", **kw).choices[0].message.tool_calls)
row("litellm response_format json_schema", lambda: litellm.completion(
    messages=[{"role": "user", "content": "Paris, 21 degrees"}],
    response_format=City, **kw).choices[0].message.content)
row("litellm n=2 + top_logprobs", lambda: (lambda r: (len(r.choices), len(
    r.choices[0].logprobs["content"][0]["top_logprobs"])))(litellm.completion(
        messages=[{"role": "user", "content": "Hi"}], n=2, logprobs=True, top_logprobs=3,
        **kw)))

with open(sys.argv[1], "w") as out:
    json.dump([[name, status, str(what)[:500]] for name, status, what in rows], out, indent=1)
print(f"{sum(r[1] == 'ok' for r in rows)} ok, {sum(r[1] != 'ok' for r in rows)} errors")
