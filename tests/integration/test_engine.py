"""The request pipeline end to end, through litellm (scripted `mock_response` or the fake
OpenAI-compatible server): answers and ledger rows, the structured-output cascade, sensitivity,
channel allow-lists, model errors, bad input, event dedupe and tier resolution."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import litellm
import pytest
from sqlmodel import select

from bot.app import build_engine
from bot.config import EMBEDDED_MODEL, load_settings
from bot.core.types import Request
from bot.economics.context import EconomicsContext
from bot.economics.tiers import TierChangeError, set_tier
from bot.ledger.models import RequestRow
from bot.pipeline.engine import Engine
from tests.paths import TESTS

SKILLS = TESTS / "skill_sources" / "engine"

PACKS = {
    "eng-docs": ('name = "eng-docs"\n', {"zorblax.md": "# Zorblax\n\nZorblax is our widget broker.\n"}),
    "secret-notes": (
        'name = "secret-notes"\nsensitive = true\n',
        {"notes.md": "# Notes\n\nThe incident notes are confidential.\n"},
    ),
    "chan-notes": (
        'name = "chan-notes"\nchannels = ["#incident-room"]\n',
        {"room.md": "# Room\n\nIncident room rules.\n"},
    ),
}


VALID = '{"label": "widget", "confidence": 0.9}'
INVALID = '{"label": "widget", "confidence": 7}'
NOT_JSON = "I think it is a widget."


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, list[Path]]:
    for name, (toml, docs) in PACKS.items():
        root = tmp_path / "packs" / name
        root.mkdir(parents=True)
        (root / "pack.toml").write_text(toml)
        for rel, text in docs.items():
            (root / rel).write_text(text)
    return {"pack_dirs": [tmp_path / "packs"], "skill_dirs": [SKILLS]}


@pytest.fixture
def eng(make_engine, dirs) -> Engine:
    return make_engine(**dirs)


def rows(engine: Engine) -> list[RequestRow]:
    with engine.ledger.session() as s:
        return list(s.exec(select(RequestRow).order_by(RequestRow.created_at)))


def real_engine(**overrides: Any) -> Engine:
    """No mock: every call goes over HTTP to whatever api_base the tiers name."""
    return build_engine(load_settings(**overrides))


def tier(url: str, name: str, boundary: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": f"openai/{boundary}-{name}",
        "api_base": url,
        "data_boundary": boundary,
        "max_retries": 0,
        "timeout": 10,
        **extra,
    }


def ladder(url: str, small: str = "external", medium: str = "local", large: str = "external") -> dict:
    return {
        "small": tier(url, "small", small),
        "medium": tier(url, "medium", medium),
        "large": tier(url, "large", large),
    }


def models_called(fake) -> list[str]:
    return [r["model"] for r in fake.requests]


# ---------------------------------------------------------------------------------------------
# An answer and its ledger row


def test_answer_and_complete_ledger_row(dirs, fake_openai) -> None:
    fake_openai.delay = 0.02
    fake_openai.script(
        "external-small",
        {"content": "Zorblax brokers widgets.", "prompt_tokens": 321, "completion_tokens": 45},
    )
    tiers = ladder(fake_openai.url)
    tiers["small"].update(input_cost_per_token=0.000002, output_cost_per_token=0.00001)
    engine = real_engine(tiers=tiers, **dirs)
    reply = engine.handle(Request(text="What is zorblax?", skill="plain", user="U1", source="cli"))
    assert reply.ok, reply.text
    assert reply.text == "Zorblax brokers widgets."
    assert models_called(fake_openai) == ["external-small"]

    [row] = rows(engine)
    pack_hash = f"eng-docs@{engine.packs['eng-docs'].hash}"
    assert row.id == reply.request_id
    assert row.status == "ok" and row.error is None
    assert row.skill == "plain" and row.user_id == "U1" and row.source == "cli" and row.purpose == "user"
    assert row.tier == "small"
    assert row.model_requested == "openai/external-small"
    assert row.model_used == "external-small"
    assert row.prompt_tokens == 321 and row.completion_tokens == 45
    assert row.cost_usd == pytest.approx(321 * 0.000002 + 45 * 0.00001, rel=1e-12)
    assert row.cost_known and row.price_source == "tier-config"
    assert row.latency_ms >= 20
    assert row.pack_hash == pack_hash
    assert row.response == "Zorblax brokers widgets."
    assert row.input_chars == len("What is zorblax?")
    assert row.escalated_from is None
    # The reply carries the same evidence.
    assert (reply.tier, reply.model, reply.pack_hash) == ("small", "external-small", pack_hash)
    assert (reply.prompt_tokens, reply.completion_tokens) == (321, 45)
    assert reply.cost_usd == pytest.approx(row.cost_usd, rel=1e-12)
    assert reply.latency_s == pytest.approx(row.latency_ms / 1000)
    assert reply.sources == ("zorblax.md",)
    assert reply.footer().startswith("plain · small · external-small · $0.0011 · ")


def test_scripted_answer_on_embedded_tier_is_free(eng, script) -> None:
    script.on("small", "scripted answer")
    reply = eng.handle(Request(text="What is zorblax?", skill="plain"))
    assert reply.text == "scripted answer"
    [row] = rows(eng)
    assert row.model_requested == EMBEDDED_MODEL
    assert row.cost_usd == 0 and row.cost_known and row.price_source == "embedded"
    assert row.prompt_tokens > 0 and row.completion_tokens > 0


def test_after_reply_hook_failure_does_not_break_the_answer(eng, script) -> None:
    seen: list[str] = []

    def broken(*_: Any) -> None:
        raise RuntimeError("hook exploded")

    eng.after_reply.extend([broken, lambda req, skill, parts, reply, row: seen.append(row.id)])
    reply = eng.handle(Request(text="What is zorblax?", skill="plain"))
    assert reply.ok
    assert seen == [reply.request_id]


# ---------------------------------------------------------------------------------------------
# The cascade for structured skills


def test_valid_on_first_tier_one_row(eng, script) -> None:
    script.on("small", f"```json\n{VALID}\n```")
    reply = eng.handle(Request(text="classify this quuxware", skill="classify"))
    assert reply.ok and not reply.escalated
    assert reply.structured == {"label": "widget", "confidence": 0.9}
    assert reply.text == "Label: widget\nConfidence: 0.9"
    [row] = rows(eng)
    assert row.status == "ok" and row.tier == "small" and row.escalated_from is None
    assert [t for t, _ in script.calls] == ["small"]


@pytest.mark.parametrize("first", [INVALID, NOT_JSON])
def test_invalid_then_valid_escalates_once(eng, script, first: str) -> None:
    script.on("small", first).on("medium", VALID)
    reply = eng.handle(Request(text="classify this quuxware", skill="classify"))
    assert reply.ok and reply.escalated
    assert reply.tier == "medium"
    assert reply.structured == {"label": "widget", "confidence": 0.9}
    assert any("escalated from small to medium" in n for n in reply.notes)
    first_row, second_row = rows(eng)
    assert first_row.tier == "small" and first_row.status == "invalid"
    assert first_row.error.startswith("invalid output: ")
    assert second_row.tier == "medium" and second_row.status == "ok" and second_row.error is None
    assert second_row.escalated_from == first_row.id
    assert reply.request_id == second_row.id
    assert reply.prompt_tokens == first_row.prompt_tokens + second_row.prompt_tokens
    assert [t for t, _ in script.calls] == ["small", "medium"]


def test_invalid_twice_gives_a_clear_message(eng, script) -> None:
    script.on("small", INVALID).on("medium", NOT_JSON)
    reply = eng.handle(Request(text="classify this quuxware", skill="classify"))
    assert reply.status == "invalid"
    assert "\n" not in reply.text
    assert "could not produce a valid classify answer" in reply.text
    assert "small and medium" in reply.text
    assert reply.request_id in reply.text
    first_row, second_row = rows(eng)
    assert first_row.status == second_row.status == "invalid"
    assert "confidence" in first_row.error
    assert second_row.error.startswith("invalid output after escalation from small: ")
    assert "no JSON object" in second_row.error
    assert second_row.escalated_from == first_row.id
    assert [t for t, _ in script.calls] == ["small", "medium"]  # no third attempt


def test_invalid_on_the_strongest_tier_says_there_is_no_stronger_tier(eng, script) -> None:
    script.on("large", INVALID)
    reply = eng.handle(Request(text="classify this flurbware", skill="classify-top"))
    assert reply.status == "invalid"
    [row] = rows(eng)
    assert row.tier == "large" and row.status == "invalid"
    assert "no stronger tier" in row.error
    assert [t for t, _ in script.calls] == ["large"]
    assert "no stronger tier" in reply.text


def test_no_escalation_when_disallowed(eng, script) -> None:
    script.on("small", INVALID)
    reply = eng.handle(Request(text="classify", skill="classify", allow_escalation=False))
    assert reply.status == "invalid"
    assert len(rows(eng)) == 1
    assert [t for t, _ in script.calls] == ["small"]


def test_invalid_then_model_error_on_the_stronger_tier(make_engine, dirs, script) -> None:
    engine = make_engine(
        tiers={n: {"model": EMBEDDED_MODEL, "max_retries": 0} for n in ("small", "medium", "large")}, **dirs
    )
    script.on("small", INVALID).on(
        "medium", litellm.APIConnectionError(message="medium is down", llm_provider="openai", model="m")
    )
    reply = engine.handle(Request(text="classify", skill="classify"))
    assert reply.status == "error"
    first_row, second_row = rows(engine)
    assert first_row.status == "invalid"
    assert second_row.status == "error" and "medium is down" in second_row.error
    assert second_row.escalated_from == first_row.id


# ---------------------------------------------------------------------------------------------
# Sensitivity: never on an external tier


@pytest.mark.parametrize(
    ("skill", "settings"),
    [
        ("vault", {}),  # the skill says so
        ("incident", {}),  # its pack says so
        ("plain", {"skills": {"plain": {"sensitive": True}}}),  # the admin says so
    ],
)
def test_sensitive_work_moves_to_the_nearest_local_tier(dirs, fake_openai, skill, settings) -> None:
    engine = real_engine(tiers=ladder(fake_openai.url), **dirs, **settings)
    reply = engine.handle(Request(text="look at this", skill=skill))
    assert reply.ok, reply.text
    assert models_called(fake_openai) == ["local-medium"]
    assert all(r.get("model") != "external-small" for r in fake_openai.requests)
    [row] = rows(engine)
    assert row.tier == "medium" and row.model_requested == "openai/local-medium"
    assert "sensitive: moved from external tier small to local tier medium" in reply.notes


def test_non_sensitive_work_stays_on_its_external_tier(dirs, fake_openai) -> None:
    engine = real_engine(tiers=ladder(fake_openai.url), **dirs)
    assert engine.handle(Request(text="What is zorblax?", skill="plain")).ok
    assert models_called(fake_openai) == ["external-small"]


def test_nearest_local_tier_prefers_the_one_below(dirs, fake_openai) -> None:
    engine = real_engine(tiers=ladder(fake_openai.url, "local", "local", "external"), **dirs)
    reply = engine.handle(Request(text="look at this", skill="vault-top"))
    assert reply.ok
    assert models_called(fake_openai) == ["local-medium"]


def test_operator_override_and_admin_assignment_cannot_leave_the_boundary(dirs, fake_openai) -> None:
    engine = real_engine(tiers=ladder(fake_openai.url), **dirs)
    reply = engine.handle(Request(text="look", skill="vault", tier="large"))
    assert reply.ok and reply.tier == "medium"
    engine.ledger.assign_tier("vault", "large", by="U1", reason="bypass set_tier", previous="small")
    reply = engine.handle(Request(text="look", skill="vault"))
    assert reply.ok and reply.tier == "medium"
    assert models_called(fake_openai) == ["local-medium", "local-medium"]
    with pytest.raises(TierChangeError, match="sensitive"):
        set_tier(EconomicsContext.of(engine), "vault", "small", by="U1", reason="cheaper", source="cli")


def test_sensitive_work_is_refused_when_no_local_tier_exists(dirs, fake_openai) -> None:
    engine = real_engine(tiers=ladder(fake_openai.url, "external", "external", "external"), **dirs)
    reply = engine.handle(Request(text="look at this", skill="vault"))
    assert reply.status == "refused"
    assert "no local tier" in reply.text
    assert fake_openai.requests == []
    [row] = rows(engine)
    assert row.status == "refused" and "no local tier" in row.error
    assert row.prompt_tokens == 0 and row.model_used is None
    # Non-sensitive work still runs.
    assert engine.handle(Request(text="What is zorblax?", skill="plain")).ok
    assert models_called(fake_openai) == ["external-small"]


def test_escalation_never_goes_to_an_external_tier(dirs, fake_openai) -> None:
    fake_openai.script("local-medium", INVALID)
    engine = real_engine(tiers=ladder(fake_openai.url), **dirs)
    reply = engine.handle(Request(text="classify this entry", skill="vault-classify"))
    assert reply.status == "invalid"
    assert models_called(fake_openai) == ["local-medium"]
    [row] = rows(engine)
    assert "no stronger tier" in row.error


def test_escalation_skips_an_external_tier_to_a_local_one(dirs, fake_openai) -> None:
    fake_openai.script("local-small", INVALID)
    fake_openai.script("local-large", VALID)
    engine = real_engine(tiers=ladder(fake_openai.url, "local", "external", "local"), **dirs)
    reply = engine.handle(Request(text="classify this entry", skill="vault-classify"))
    # vault-classify is declared on medium (external here): it moves down to small first.
    assert models_called(fake_openai) == ["local-small", "local-large"]
    assert reply.ok and reply.escalated and reply.tier == "large"


# ---------------------------------------------------------------------------------------------
# Channel allow-lists


@pytest.mark.parametrize(
    ("skill", "settings", "allowed"),
    [
        ("secops-only", {}, "secops"),
        ("chan-pack", {}, "incident-room"),
        ("plain", {"skills": {"plain": {"channels": "ops-room,#war-room"}}}, "war-room"),
    ],
)
def test_channel_allow_lists(make_engine, dirs, script, skill, settings, allowed) -> None:
    engine = make_engine(**dirs, **settings)
    outside = engine.handle(Request(text="hello", skill=skill, channel="C0RANDOM", channel_name="random"))
    assert outside.status == "refused"
    assert f"#{allowed}" in outside.text
    assert script.calls == []
    [refused] = rows(engine)  # the refusal is evidence too, but no model was called
    assert (refused.status, refused.skill, refused.model_used) == ("refused", skill, None)
    assert refused.error == outside.text and refused.id == outside.request_id
    inside = engine.handle(Request(text="hello", skill=skill, channel="C0ALLOWED", channel_name=allowed))
    assert inside.ok
    by_id = engine.handle(Request(text="hello", skill=skill, channel=allowed))
    assert by_id.ok
    # No channel (the CLI, the shell): not restricted.
    assert engine.handle(Request(text="hello", skill=skill)).ok


# ---------------------------------------------------------------------------------------------
# Model errors and timeouts


NO_RETRY = {n: {"model": EMBEDDED_MODEL, "max_retries": 0} for n in ("small", "medium", "large")}


@pytest.mark.parametrize(
    ("error", "kind", "says"),
    [
        (
            litellm.Timeout(message="provider too slow", model="m", llm_provider="openai"),
            "timeout",
            "in time",
        ),
        (
            litellm.APIConnectionError(message="connection refused", llm_provider="openai", model="m"),
            "unreachable",
            "could not be reached",
        ),
        (
            litellm.RateLimitError(message="slow down please", llm_provider="openai", model="m"),
            "rate_limited",
            "rate-limiting",
        ),
    ],
)
def test_model_error_gives_one_line_and_an_error_row(make_engine, dirs, script, error, kind, says) -> None:
    engine = make_engine(tiers=NO_RETRY, **dirs)
    script.on("small", error)
    reply = engine.handle(Request(text="What is zorblax?", skill="plain"))
    assert reply.status == "error"
    assert "\n" not in reply.text and "Traceback" not in reply.text
    assert says in reply.text
    assert reply.request_id in reply.text
    [row] = rows(engine)
    assert row.status == "error"
    assert row.error.startswith(f"{kind}: ")
    assert error.message.split(": ")[-1] in row.error
    assert row.model_used is None and row.prompt_tokens == 0 and row.cost_usd == 0


def test_timeout_on_a_default_tier_is_reported_as_a_timeout(eng, script) -> None:
    """Default tiers retry once (max_retries=1); the user must still learn it was a timeout."""
    assert eng.settings.tiers["small"].max_retries == 1
    script.on("small", litellm.Timeout(message="provider too slow", model="m", llm_provider="openai"))
    script.on("small", litellm.Timeout(message="provider too slow", model="m", llm_provider="openai"))
    reply = eng.handle(Request(text="What is zorblax?", skill="plain"))
    assert reply.status == "error"
    [row] = rows(eng)
    assert row.status == "error"
    assert "provider too slow" in row.error, row.error
    assert "did not answer in time" in reply.text


def test_server_500_is_an_error_row(dirs, fake_openai) -> None:
    fake_openai.script("external-small", {"status": 500, "content": "upstream exploded"})
    engine = real_engine(tiers=ladder(fake_openai.url), **dirs)
    reply = engine.handle(Request(text="What is zorblax?", skill="plain"))
    assert reply.status == "error"
    assert reply.text == f"Sorry: the model provider had an internal error. (request {reply.request_id})"
    [row] = rows(engine)
    assert row.status == "error" and "upstream exploded" in row.error


@pytest.mark.parametrize("retries", [0, 1, 2])
def test_max_retries_means_that_many_retries(dirs, fake_openai, retries: int) -> None:
    """A tier's max_retries=N allows N retries after the first attempt: N+1 calls in all."""
    fake_openai.script("external-small", *[{"status": 500, "content": "upstream exploded"}] * 10)
    tiers = ladder(fake_openai.url)
    tiers["small"]["max_retries"] = retries
    engine = real_engine(tiers=tiers, **dirs)
    reply = engine.handle(Request(text="What is zorblax?", skill="plain"))
    assert reply.status == "error"
    [row] = rows(engine)
    assert row.status == "error" and "upstream exploded" in row.error
    assert len(fake_openai.requests) == retries + 1


def test_slow_server_times_out(dirs, fake_openai) -> None:
    fake_openai.script("external-small", {"content": "too late", "sleep": 1})
    tiers = ladder(fake_openai.url)
    tiers["small"]["timeout"] = 0.3
    engine = real_engine(tiers=tiers, **dirs)
    reply = engine.handle(Request(text="What is zorblax?", skill="plain"))
    assert reply.status == "error"
    assert "did not answer in time" in reply.text
    [row] = rows(engine)
    assert row.status == "error" and row.error.startswith("timeout: ")


def test_unreachable_server(dirs) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    engine = real_engine(tiers=ladder(f"http://127.0.0.1:{port}/v1"), **dirs)
    reply = engine.handle(Request(text="What is zorblax?", skill="plain"))
    assert reply.status == "error"
    assert "could not be reached" in reply.text
    [row] = rows(engine)
    assert row.status == "error" and row.error.startswith("unreachable: ")


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("text", ["", "   ", "\n\t  \n"])
def test_empty_text_gives_a_usage_hint_and_no_row(eng, script, text: str) -> None:
    reply = eng.handle(Request(text=text, skill="plain"))
    assert reply.status == "rejected"
    assert "`/plain What is zorblax?`" in reply.text
    free = eng.handle(Request(text=text))
    assert free.status == "rejected" and "`/ask " in free.text
    assert rows(eng) == [] and script.calls == []


@pytest.mark.parametrize(
    "text",
    ["\x00\x01\x02PK\x03\x04binary", "".join(chr(i % 31 + 1) for i in range(500)), "ok\x00"],
)
def test_binary_text_is_refused_clearly(eng, script, text: str) -> None:
    reply = eng.handle(Request(text=text, skill="plain"))
    assert reply.status == "rejected"
    assert "binary" in reply.text
    assert rows(eng) == [] and script.calls == []


def test_text_with_normal_whitespace_is_not_binary(eng, script) -> None:
    assert eng.handle(Request(text="line one\n\tline two\r\nline three", skill="plain")).ok


def test_prepare_input_can_refuse(eng, script) -> None:
    reply = eng.handle(Request(text="WHAT IS ZORBLAX", skill="plain"))
    assert reply.status == "rejected" and reply.text == "Please don't shout."
    assert rows(eng) == []


def test_huge_text_is_trimmed_with_a_note(make_engine, dirs, script) -> None:
    engine = make_engine(max_input_tokens=500, **dirs)
    text = "Tell me about zorblax brokers and widgets. " * 8000  # ~350k characters
    reply = engine.handle(Request(text=text, skill="plain"))
    assert reply.ok
    assert any("only the first 500 were used" in n for n in reply.notes), reply.notes
    sent = script.calls[-1][1][-1]["content"]
    count = engine.llm.counter("small")
    assert count(sent) <= 500
    assert len(sent) < len(text) and text.startswith(sent)
    [row] = rows(engine)
    assert row.input_chars == len(text)


def test_unknown_skill_lists_valid_ones(eng, script) -> None:
    reply = eng.handle(Request(text="hello", skill="nonexistent"))
    assert reply.status == "rejected"
    assert "Unknown skill 'nonexistent'" in reply.text
    for name in ("ask", "plain", "classify", "vault"):
        assert name in reply.text
    assert rows(eng) == [] and script.calls == []


def test_unknown_tier_lists_valid_ones(eng, script) -> None:
    reply = eng.handle(Request(text="hello", skill="plain", tier="gigantic"))
    assert reply.status == "rejected"
    assert reply.text == "Unknown tier 'gigantic'. Valid tiers: small, medium, large."
    assert rows(eng) == [] and script.calls == []


# ---------------------------------------------------------------------------------------------
# Event dedupe


def test_same_event_twice_is_answered_once(make_engine, dirs, script) -> None:
    engine = make_engine(**dirs)
    first = engine.handle(Request(text="What is zorblax?", skill="plain", event_id="Ev001"))
    second = engine.handle(Request(text="What is zorblax?", skill="plain", event_id="Ev001"))
    assert first.ok
    assert second.status == "duplicate"
    assert second.request_id is None
    assert len(rows(engine)) == 1
    assert len(script.calls) == 1
    # "After a restart": a new Engine and a new Ledger on the same database.
    restarted = make_engine(**dirs)
    assert restarted is not engine and restarted.ledger is not engine.ledger
    again = restarted.handle(Request(text="What is zorblax?", skill="plain", event_id="Ev001"))
    assert again.status == "duplicate"
    assert len(rows(restarted)) == 1
    other = restarted.handle(Request(text="What is zorblax?", skill="plain", event_id="Ev002"))
    assert other.ok
    assert [r.event_id for r in rows(restarted)] == ["Ev001", "Ev002"]


# ---------------------------------------------------------------------------------------------
# Tier resolution


def test_tier_resolution_admin_over_config_over_default(make_engine, dirs, script) -> None:
    default = make_engine(**dirs)
    reply = default.handle(Request(text="What is zorblax?", skill="plain"))
    assert reply.tier == "small"
    assert default.ledger.get_request(reply.request_id).route_reason.endswith("tier small (skill default)")

    configured = make_engine(skills={"plain": {"tier": "medium"}}, **dirs)
    skill = configured.registry.get("plain")
    assert configured.configured_tier(skill) == ("medium", "configuration")
    reply = configured.handle(Request(text="What is zorblax?", skill="plain"))
    assert reply.tier == "medium"
    assert configured.ledger.get_request(reply.request_id).route_reason.endswith("(configuration)")

    row = set_tier(
        EconomicsContext.of(configured),
        "plain",
        "large",
        by="U0ADMIN",
        reason="quality dropped",
        source="cli",
    )
    assert (row.skill, row.tier, row.previous_tier, row.assigned_by) == (
        "plain",
        "large",
        "medium",
        "U0ADMIN",
    )
    assert configured.configured_tier(skill) == ("large", "admin assignment")
    reply = configured.handle(Request(text="What is zorblax?", skill="plain"))
    assert reply.tier == "large"
    assert configured.ledger.get_request(reply.request_id).route_reason.endswith(
        "tier large (admin assignment)"
    )

    # An operator override beats everything, for that request only.
    reply = configured.handle(Request(text="What is zorblax?", skill="plain", tier="small"))
    assert reply.tier == "small"
    assert configured.ledger.get_request(reply.request_id).route_reason.endswith("(operator override)")
    assert [t for t, _ in script.calls] == ["small", "medium", "large", "small"]

    set_tier(
        EconomicsContext.of(configured), "plain", "medium", by="U0ADMIN", reason="back down", source="slack"
    )
    history = configured.ledger.tier_history("plain")
    assert [(h.tier, h.previous_tier, h.source) for h in history] == [
        ("medium", "large", "slack"),
        ("large", "medium", "cli"),
    ]
    assert configured.ledger.tier_history("classify") == []
    assert configured.ledger.current_tiers() == {"plain": "medium"}


def test_set_tier_validates(eng) -> None:
    with pytest.raises(TierChangeError, match=r"unknown skill 'nope'\. Valid skills: .*plain"):
        set_tier(EconomicsContext.of(eng), "nope", "large", by="U1", reason="r", source="cli")
    with pytest.raises(TierChangeError, match=r"unknown tier 'huge'\. Valid tiers: small, medium, large"):
        set_tier(EconomicsContext.of(eng), "plain", "huge", by="U1", reason="r", source="cli")
    with pytest.raises(TierChangeError, match="reason is required"):
        set_tier(EconomicsContext.of(eng), "plain", "large", by="U1", reason="   ", source="cli")
    with pytest.raises(TierChangeError, match="stale"):
        set_tier(
            EconomicsContext.of(eng),
            "plain",
            "large",
            by="U1",
            reason="r",
            source="cli",
            expect_current="medium",
        )
    assert eng.ledger.tier_history() == []


def test_assignment_to_a_tier_that_no_longer_exists_is_ignored(make_engine, dirs, script) -> None:
    engine = make_engine(**dirs)
    engine.ledger.assign_tier("plain", "retired-tier", by="U1", reason="old", previous="small")
    assert engine.configured_tier(engine.registry.get("plain")) == ("small", "skill default")


# ---------------------------------------------------------------------------------------------
# A custom ladder


def test_custom_ladder_with_configured_skill_tier_serves_builtin_skill(
    isolated: Path, make_engine, script
) -> None:
    (isolated / "tierwise.toml").write_text(
        '[tiers.haiku]\nmodel = "tierwise-local/smollm2"\n'
        '[tiers.sonnet]\nmodel = "tierwise-local/smollm2"\n'
        '[skills.ask]\ntier = "haiku"\n'
    )
    engine = make_engine()
    assert engine.tiers == ["haiku", "sonnet"]
    assert "ask" in engine.registry.names(), [str(p) for p in engine.registry.problems]
    reply = engine.handle(Request(text="How do I get VPN access?", skill="ask"))
    assert reply.ok and reply.tier == "haiku"


def test_custom_ladder_free_text_never_crashes(isolated: Path, make_engine, script) -> None:
    (isolated / "tierwise.toml").write_text(
        '[tiers.haiku]\nmodel = "tierwise-local/smollm2"\n[tiers.sonnet]\nmodel = "tierwise-local/smollm2"\n'
    )
    engine = make_engine()
    reply = engine.handle(Request(text="How do I get VPN access?"))
    assert reply.ok, reply.text
    assert reply.skill == "ask"
    assert reply.tier == "haiku"  # the declared "small" maps onto the cheapest tier of the ladder


# ---------------------------------------------------------------------------------------------
# The context window


WINDOW_SKILLS = TESTS / "skill_sources" / "window"


@pytest.mark.parametrize("window", [1024, 1500, 2048])
def test_prompt_plus_output_fits_the_context_window(make_engine, tmp_path: Path, script, window: int) -> None:
    """What is sent (all messages, as the provider counts them) plus max_tokens must fit the tier's
    context_window, or a real provider rejects the call."""
    from bot.models.llm import litellm_module

    pack = tmp_path / "window-packs" / "many-notes"
    pack.mkdir(parents=True)
    (pack / "pack.toml").write_text('name = "many-notes"\n')
    for i in range(60):
        (pack / f"note-{i:02d}.md").write_text(
            f"# Note {i}\n\nVPN access and monitor expenses, note {i}: file a ticket, wait {i} days.\n"
        )
    engine = make_engine(
        tiers={"small": {"model": "openai/gpt-4o-mini", "context_window": window, "data_boundary": "local"}},
        pack_dirs=[tmp_path / "window-packs"],
        skill_dirs=[WINDOW_SKILLS],
    )
    reply = engine.handle(
        Request(text="How do I get VPN access and expense a monitor? " * 300, skill="filler")
    )
    assert reply.ok
    messages = script.calls[-1][1]
    prompt = litellm_module().token_counter(model="gpt-4o-mini", messages=messages)
    assert prompt + 400 <= window, f"prompt {prompt} + max_tokens 400 > context_window {window}"
