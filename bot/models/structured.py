"""How a tier is asked for structured output: a grammar, the provider's native schema, or the prompt.

- `grammar`: the embedded model decodes under a llama.cpp grammar built from the output model's JSON
  schema, so every token it can emit keeps the JSON valid against the schema.
- `schema`: providers that support native structured output get `response_format` with the JSON
  schema through litellm (`litellm.supports_response_schema`, or `structured_output = "schema"` on
  a tier whose server supports it, e.g. a self-hosted vLLM behind `openai/...`).
- `prompt`: the schema is only described in the prompt (always done; the fallback).
- `text`: a free-text skill.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel

from bot.config import TierConfig

log = logging.getLogger(__name__)

OutputMode = Literal["grammar", "schema", "prompt", "text"]


def output_mode(tier: TierConfig, schema: type[BaseModel] | None, litellm: Any) -> OutputMode:
    if schema is None:
        return "text"
    choice = getattr(tier, "structured_output", "auto")
    if choice == "prompt":  # an operator's choice (or a before/after benchmark)
        return "prompt"
    if tier.embedded:
        return "grammar"
    if choice == "schema":
        return "schema"
    try:
        supported = bool(litellm.supports_response_schema(model=tier.model))
    except Exception:  # an unknown model or provider: the prompt is the safe way to ask
        supported = False
    return "schema" if supported else "prompt"


def response_format(schema: type[BaseModel]) -> dict[str, Any]:
    """The OpenAI-style `response_format` litellm passes on (and maps for other providers).

    Not strict: strict mode demands every property be required and no defaults, which our output
    models (optional fields with defaults) do not follow; the schema still steers the provider.
    """
    return {
        "type": "json_schema",
        "json_schema": {
            "name": schema.__name__,
            "schema": schema.model_json_schema(),
            "strict": False,
        },
    }


def schema_from_params(params: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema inside a `response_format` parameter, or None (the embedded provider's side)."""
    fmt = params.get("response_format")
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_schema":
            inner = fmt.get("json_schema") or {}
            schema = inner.get("schema") if isinstance(inner, dict) else None
            return schema if isinstance(schema, dict) else None
        schema = fmt.get("schema")
        return schema if isinstance(schema, dict) else None
    return None
