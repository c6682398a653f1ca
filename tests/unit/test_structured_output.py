"""How structured output is asked for: native `response_format` with the JSON schema where the
provider supports it (checked on the wire, through the OpenAI-compatible fake), a grammar on the
embedded model, the prompt alone otherwise; the mode is recorded on the ledger row."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import select

from bot.app import build_engine
from bot.config import EMBEDDED_MODEL, TierConfig, load_settings
from bot.core.types import Request
from bot.ledger.models import RequestRow
from bot.models.llm import litellm_module
from bot.models.structured import output_mode, response_format, schema_from_params
from bot.pipeline.engine import Engine
from skills.label_email import EmailLabel

LABEL = {"category": "billing", "priority": "normal", "team": "finance-billing", "reason": "Refund request."}
EMAIL = "From: ap@northwind.example\nSubject: refund\n\nPlease refund the duplicate charge on INV-2291."


def engine_on(url: str, model: str, **tier: Any) -> Engine:
    conf = {"model": model, "api_base": url, "max_retries": 0, "timeout": 10, **tier}
    settings = load_settings(tiers={"small": conf, "medium": conf, "large": conf})
    return build_engine(settings, with_economics=False)


def rows(engine: Engine) -> list[RequestRow]:
    with engine.ledger.session() as s:
        return list(s.exec(select(RequestRow)))


def test_provider_with_native_support_gets_the_schema_on_the_wire(fake_openai: Any) -> None:
    fake_openai.default = json.dumps(LABEL)
    engine = engine_on(fake_openai.url, "openai/gpt-4o-mini")  # litellm: supports_response_schema
    reply = engine.handle(Request(text=EMAIL, skill="label-email"))
    assert reply.status == "ok" and reply.structured == LABEL
    [body] = fake_openai.requests
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "EmailLabel"
    assert fmt["json_schema"]["schema"]["properties"]["category"]["enum"][0] == "billing"
    assert set(fmt["json_schema"]["schema"]["required"]) == {"category", "priority", "team", "reason"}
    [row] = rows(engine)
    assert row.output_mode == "schema" and row.verify_status == "passed"


def test_unknown_model_falls_back_to_the_prompt(fake_openai: Any) -> None:
    fake_openai.default = json.dumps(LABEL)
    engine = engine_on(fake_openai.url, "openai/house-model")
    engine.handle(Request(text=EMAIL, skill="label-email"))
    [body] = fake_openai.requests
    assert "response_format" not in body
    assert "JSON schema" in body["messages"][0]["content"]  # the schema is still in the prompt
    assert rows(engine)[0].output_mode == "prompt"


def test_a_tier_can_declare_native_support_or_opt_out(fake_openai: Any) -> None:
    fake_openai.default = json.dumps(LABEL)
    engine = engine_on(fake_openai.url, "openai/house-model", structured_output="schema")  # e.g. vLLM
    engine.handle(Request(text=EMAIL, skill="label-email"))
    assert fake_openai.requests[-1]["response_format"]["json_schema"]["name"] == "EmailLabel"
    fake_openai.reset()
    fake_openai.default = json.dumps(LABEL)
    engine = engine_on(fake_openai.url, "openai/gpt-4o-mini", structured_output="prompt")
    engine.handle(Request(text=EMAIL, skill="label-email"))
    assert "response_format" not in fake_openai.requests[-1]


def test_free_text_skills_never_send_a_response_format(fake_openai: Any) -> None:
    fake_openai.default = "Our VPN is Tailscale."
    engine = engine_on(fake_openai.url, "openai/gpt-4o-mini")
    engine.handle(Request(text="what VPN do we use?", skill="ask"))
    assert "response_format" not in fake_openai.requests[-1]
    assert rows(engine)[0].output_mode == "text"


@pytest.mark.parametrize(
    ("tier", "schema", "mode"),
    [
        ({"model": EMBEDDED_MODEL}, EmailLabel, "grammar"),
        ({"model": EMBEDDED_MODEL, "structured_output": "prompt"}, EmailLabel, "prompt"),
        ({"model": EMBEDDED_MODEL}, None, "text"),
        ({"model": "openai/gpt-4o-mini"}, EmailLabel, "schema"),
        ({"model": "openai/house-model"}, EmailLabel, "prompt"),
    ],
)
def test_output_mode(tier: dict[str, Any], schema: Any, mode: str) -> None:
    conf = TierConfig(**tier)
    assert output_mode(conf, schema, litellm_module()) == mode


def test_embedded_provider_reads_the_schema_from_either_shape() -> None:
    schema = EmailLabel.model_json_schema()
    assert schema_from_params({"response_format": response_format(EmailLabel)}) == schema
    assert schema_from_params({"response_format": {"type": "json_object", "schema": schema}}) == schema
    assert schema_from_params({"response_format": {"type": "json_object"}}) is None
    assert schema_from_params({}) is None


def test_embedded_handler_passes_the_schema_to_llama_cpp(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.models import embedded
    from bot.models.llm import LLM

    seen: dict[str, Any] = {}

    def fake_chat(messages: Any, max_tokens: int, temperature: float, json_schema: Any = None) -> dict:
        seen["schema"] = json_schema
        usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        return {"choices": [{"message": {"content": json.dumps(LABEL)}}], "usage": usage}

    monkeypatch.setattr(embedded, "chat", fake_chat)
    llm = LLM(load_settings().tiers)
    result = llm.complete("small", [{"role": "user", "content": "hi"}], 50, response_schema=EmailLabel)
    assert result.output_mode == "grammar" and seen["schema"] == EmailLabel.model_json_schema()
    result = llm.complete("small", [{"role": "user", "content": "hi"}], 50)
    assert result.output_mode == "text" and seen["schema"] is None
