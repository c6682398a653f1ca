"""What a good answer is worth: configured defaults, an admin's setting from the CLI and from Slack
(admins only), and the review pricing moves with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.adapters import cli
from bot.economics import skill_values
from bot.economics.context import EconomicsContext
from bot.economics.skill_values import ValueChangeError, parse_value
from tests.slack_helpers import (  # noqa: F401 (fixtures)
    ADMIN,
    USER,
    BotEnv,
    http_bot_fixture,
    slack_fixture,
    slash,
)


def run(*args: str) -> Any:
    return CliRunner().invoke(cli.app, list(args))


@pytest.mark.parametrize(
    ("text", "value"), [("0.40", 0.4), ("$2", 2.0), ("1,000", 1000.0), ("default", None)]
)
def test_parse_value(text: str, value: float | None) -> None:
    assert parse_value(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-1", "'-1': value_per_good_answer_usd must be a non-negative number of USD"),
        ("lots", "'lots' is not a number: value_per_good_answer_usd must be"),
        ("inf", "'inf': value_per_good_answer_usd must be"),
    ],
)
def test_bad_values_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueChangeError, match=message.replace("$", r"\$")):
        parse_value(text)


def test_the_admins_value_overrides_the_skills_which_overrides_the_global_default(make_engine: Any) -> None:
    engine = make_engine(
        review={"value_per_good_answer_usd": 0.1}, skills={"summarize": {"value_per_good_answer_usd": 0.5}}
    )
    assert skill_values.effective(EconomicsContext.of(engine), "ask") == 0.1
    assert skill_values.effective(EconomicsContext.of(engine), "summarize") == 0.5
    assert skill_values.set_value(EconomicsContext.of(engine), "ask", "2", by="U_ADMIN", source="cli") == (
        0.1,
        2.0,
    )
    assert skill_values.effective(EconomicsContext.of(engine), "ask") == 2.0
    assert skill_values.set_value(
        EconomicsContext.of(engine), "ask", "default", by="U_ADMIN", source="cli"
    ) == (2.0, 0.1)
    with pytest.raises(ValueChangeError, match="unknown skill 'nope'"):
        skill_values.set_value(EconomicsContext.of(engine), "nope", "1", by="U_ADMIN", source="cli")
    from bot.economics.tier_review import gather
    from bot.ledger.models import utcnow

    skill_values.set_value(EconomicsContext.of(engine), "ask", "0.75", by="U_ADMIN", source="cli")
    inputs = {i.skill: i for i in gather(EconomicsContext.of(engine), utcnow())}
    assert inputs["ask"].value_per_good_answer_usd == 0.75
    assert inputs["summarize"].value_per_good_answer_usd == 0.5


def test_the_cli_sets_and_lists_values(isolated: Path) -> None:
    result = run("value", "ask", "0.4", "--by", "alice")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "ask: value of a good answer not declared (quality margins and the savings floor decide) → $0.4\n"
    )
    listed = run("value", "ask")
    assert listed.stdout == "ask: $0.4\n"
    bad = run("value", "ask", "-2")
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert "tierwise: '-2': value_per_good_answer_usd must be a non-negative number" in bad.output
    unknown = run("value", "nope")
    assert unknown.exit_code == 2 and "unknown skill 'nope'" in unknown.output


def test_slack_value_is_for_admins_only(http_bot: BotEnv) -> None:
    acked = http_bot.command(slash("/tierwise", "value ask 0.4", http_bot.slack))
    assert acked.payload == {"text": "Only Tierwise admins can see or change tier assignments."}
    http_bot.settle()
    assert skill_values.effective(EconomicsContext.of(http_bot.engine), "ask") is None

    http_bot.command(slash("/tierwise", "value ask 0.4", http_bot.slack, user=ADMIN))
    http_bot.settle()
    [reply] = http_bot.slack.calls_to(f"response_url:cmd-/tierwise-{ADMIN}")
    assert reply.params["text"] == (
        "*ask*: a good answer is worth $0.4 (was not declared (quality margins and the savings floor decide)); "
        "the next review prices moves with it."
    )
    assert skill_values.effective(EconomicsContext.of(http_bot.engine), "ask") == 0.4


def test_slack_value_with_bad_input_says_how(http_bot: BotEnv) -> None:
    acked = http_bot.command(slash("/tierwise", "value ask", http_bot.slack, user=ADMIN))
    assert acked.payload == {
        "text": "Usage: `/tierwise value SKILL USD` (what a good answer is worth, e.g. 0.40; `default` to reset)"
    }
    http_bot.command(slash("/tierwise", "value ask lots", http_bot.slack, user=ADMIN))
    http_bot.settle()
    [reply] = http_bot.slack.calls_to(f"response_url:cmd-/tierwise-{ADMIN}")
    assert reply.params["text"].startswith("Value not changed: 'lots' is not a number")
