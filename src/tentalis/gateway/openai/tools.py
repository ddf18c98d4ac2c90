"""The request fields of tool calling and structured output, in OpenAI's shapes:
``tools``, ``tool_choice``, ``response_format`` and an assistant message's ``tool_calls``
(the replies are in ``openai.replies``).

Types the server does not act on (a tool ``type`` other than ``function``, a
``response_format`` other than ``text`` / ``json_object`` / ``json_schema``) validate
here as plain strings so that the model server can refuse them with a 400 that names
them, rather than a bare schema error.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

FUNCTION_NAME = r"^[A-Za-z0-9_.\-]{1,64}$"


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(max_length=256)
    arguments: str = Field(default="{}", description="The arguments, a JSON object as text.")


class ToolCall(BaseModel):
    """An earlier call in an assistant message."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(default="", max_length=256)
    type: str = "function"
    function: FunctionCall


class FunctionDef(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=FUNCTION_NAME)
    description: str | None = None
    parameters: dict[str, Any] | None = Field(
        default=None, description="JSON Schema of the arguments object.")
    strict: bool | None = None


class Tool(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(description="Only `function` is supported.")
    function: FunctionDef | None = None

    def definition(self) -> dict[str, Any]:
        """The tool as it is rendered into the prompt."""
        assert self.function is not None
        return {"type": "function",
                "function": self.function.model_dump(exclude_none=True)}


class FunctionName(BaseModel):
    name: str


class NamedToolChoice(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = "function"
    function: FunctionName


ToolChoice = str | NamedToolChoice
"""``auto``, ``none``, ``required`` or a named function (others: refused by the server)."""


class JsonSchemaSpec(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str = Field(default="response", max_length=64)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(description="`text`, `json_object` or `json_schema`.")
    json_schema: JsonSchemaSpec | None = None
