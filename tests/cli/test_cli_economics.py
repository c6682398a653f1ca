"""`tierwise digest`, `tierwise review` and configuration errors of the economics settings, through
the real command line (typer's CliRunner; `TIERWISE_DATA_DIR` is per test via conftest).

The configuration lives in a tierwise.toml in the test's working directory, and the ledger is
seeded with the week-46 scenario of tests/ledger_builder.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.adapters import cli
from bot.adapters.slack import digest as digest_blocks
from bot.app import build_engine
from bot.config import load_settings
from bot.core.rec_format import format_recommendation
from bot.economics import digest as digest_mod
from bot.economics import tier_review
from bot.economics.context import EconomicsContext
from bot.models.llm import LLM
from bot.pipeline.engine import Engine
from tests.fakes.fake_slack import BOT_TOKEN
from tests.ledger_builder import LABEL_REASON, W46, W46_END, W46_TOTALS, seed_week46, seeded_database

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CONFIG = """
[tiers.small]
model = "openai/small-model"
input_cost_per_token = 0.001
output_cost_per_token = 0.002

[tiers.medium]
model = "openai/medium-model"
input_cost_per_token = 0.002
output_cost_per_token = 0.004

[tiers.large]
model = "openai/large-model"
input_cost_per_token = 0.004
output_cost_per_token = 0.008

[skills.label-email]
tier = "medium"

[skills.summarize]
tier = "medium"
"""


def run(*args: str) -> Any:
    return CliRunner().invoke(cli.app, list(args))


def engine_here() -> Engine:
    """The engine the CLI builds in this directory (same config, same database)."""
    settings = load_settings()
    return build_engine(settings, llm=LLM(settings.tiers, mock_response="unused"))


@pytest.fixture
def seeded(isolated: Path) -> Engine:
    (isolated / "tierwise.toml").write_text(CONFIG, encoding="utf-8")
    seeded_database(load_settings().data_dir)
    return engine_here()


# digest ------------------------------------------------------------------------------------------------


def test_digest_text_is_the_rendered_digest(seeded: Engine) -> None:
    result = run("digest", "--week", W46, "--format", "text")
    assert result.exit_code == 0, result.output
    expected = digest_mod.to_text(digest_mod.build_digest(EconomicsContext.of(seeded), W46))
    assert result.stdout == expected + "\n"
    assert result.stdout.splitlines()[0] == (
        "Tierwise digest 2026-W46: 18 requests (+200% vs last week) from 6 people, $0.68 (+142%)."
    )
    assert "  DOWNGRADE label-email medium → small: " + LABEL_REASON in result.stdout.splitlines()


def test_digest_markdown(seeded: Engine) -> None:
    result = run("digest", "--week", W46, "--format", "markdown")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# Tierwise digest 2026-W46: 18 requests")
    assert "| label-email | medium | 8 | 2 | 0.5000 | no ratings |" in lines


def test_digest_json_numbers(seeded: Engine) -> None:
    result = run("digest", "--week", W46, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["totals"] == W46_TOTALS
    assert [(s["skill"], s["tier"], s["requests"], s["cost_usd"]) for s in data["skills"]] == [
        ("label-email", "medium", 8, 0.5),
        ("ask", "small", 6, 0.09375),
        ("summarize", "medium", 3, 0.0625),
        ("triage-alert", "small", 1, 0.0234375),
    ]
    recs = {r["skill"]: r for r in data["recommendations"]}
    assert (recs["label-email"]["action"], recs["label-email"]["monthly_delta_usd"]) == ("downgrade", -11.25)
    assert data["side_spend"] == {"eval": 0.5, "judge": 0.125, "shadow": 0.25}


def test_digest_blocks(seeded: Engine) -> None:
    result = run("digest", "--week", W46, "--format", "blocks")
    assert result.exit_code == 0, result.output
    blocks = json.loads(result.stdout)
    assert blocks == digest_blocks.to_blocks(digest_mod.build_digest(EconomicsContext.of(seeded), W46))
    assert 0 < len(blocks) <= 50 and blocks[0]["type"] == "header"


def test_digest_post_delivers_blocks_and_the_chart(
    seeded: Engine, fake_slack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_API_URL", fake_slack.api_url)
    monkeypatch.setenv("TIERWISE_ADMIN_CHANNEL", "C_ADMIN")
    result = run("digest", "--week", W46, "--post")
    assert result.exit_code == 0, result.output

    (message,) = fake_slack.calls_to("chat.postMessage")
    (complete,) = fake_slack.calls_to("files.completeUploadExternal")
    (file_id,) = fake_slack.uploads
    ts = message.response["ts"]
    assert result.stdout == f"Posted digest {W46} to C_ADMIN (ts {ts}, chart {file_id}).\n"
    assert message.params["channel"] == "C_ADMIN"
    assert message.params["text"].startswith("Tierwise digest 2026-W46: 18 requests")
    assert fake_slack.uploads[file_id].startswith(PNG_MAGIC)
    assert (complete.params["channel_id"], complete.params["thread_ts"]) == ("C_ADMIN", ts)

    stored = {r.skill: r for r in tier_review.latest(EconomicsContext.of(seeded))}
    buttons = {
        b["block_id"]: [e["value"] for e in b["elements"]]
        for b in message.json_field("blocks")
        if b["type"] == "actions"
    }
    ids = {str(stored["label-email"].id), str(stored["ask"].id)}
    assert buttons == {f"rec_{i}": [i, i] for i in ids}
    assert (stored["label-email"].status, stored["label-email"].period) == ("open", W46)


def test_digest_post_needs_the_admin_channel(seeded: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    result = run("digest", "--week", W46, "--post")
    assert result.exit_code == 2
    assert result.stderr == (
        "tierwise: --post needs TIERWISE_ADMIN_CHANNEL (the channel id to post the digest to)\n"
    )


@pytest.mark.parametrize(
    ("week", "message"),
    [
        ("2026-W60", "tierwise: --week '2026-W60': bad week '2026-W60': 2026 has no ISO week 60"),
        ("2025-W53", "tierwise: --week '2025-W53': bad week '2025-W53': 2025 has no ISO week 53"),
        ("banana", "tierwise: --week 'banana': bad week 'banana': expected YYYY-Www, e.g. 2026-W47"),
        ("2026-46", "tierwise: --week '2026-46': bad week '2026-46': expected YYYY-Www, e.g. 2026-W47"),
    ],
)
def test_a_bad_week_is_one_line_and_exit_2(seeded: Engine, week: str, message: str) -> None:
    result = run("digest", "--week", week)
    assert result.exit_code == 2
    assert result.stderr == message + "\n"
    assert result.stdout == ""


def test_a_bad_format_is_rejected(seeded: Engine) -> None:
    result = run("digest", "--week", W46, "--format", "xml")
    assert result.exit_code == 2
    assert result.stderr == "tierwise: --format 'xml': use text, markdown, json or blocks\n"


# review ------------------------------------------------------------------------------------------------


@pytest.fixture
def seeded_until_now(isolated: Path) -> Engine:
    """The scenario moved in time so that its review window ends now (`tierwise review` uses now)."""
    from bot.ledger.models import utcnow

    (isolated / "tierwise.toml").write_text(CONFIG, encoding="utf-8")
    engine = engine_here()
    seed_week46(engine.ledger, shift=utcnow() - W46_END)
    return engine


def test_review_json(seeded_until_now: Engine) -> None:
    result = run("review", "--json")
    assert result.exit_code == 0, result.output
    recs = {r["skill"]: r for r in json.loads(result.stdout)["recommendations"]}
    assert list(recs) == ["ask", "hunt", "label-email", "summarize", "triage-alert", "write-report"]
    label = recs["label-email"]
    assert (label["action"], label["current_tier"], label["target_tier"]) == ("downgrade", "medium", "small")
    assert (label["reason"], label["monthly_delta_usd"]) == (LABEL_REASON, -11.25)
    assert label["evidence"]["comparisons"][0]["pairs"] == 240 and label["evidence"]["requests"] == 224
    assert (recs["ask"]["action"], recs["ask"]["monthly_delta_usd"]) == ("upgrade", 0.9375)
    assert recs["hunt"]["reason"] == (
        "no traffic in the window (28 days); no other tier this skill may use: nothing to sample"
    )


def test_review_text(seeded_until_now: Engine) -> None:
    result = run("review")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 6
    assert f"label-email: downgrade medium → small — {LABEL_REASON}" in lines
    assert lines == [
        format_recommendation(r) for r in tier_review.review(EconomicsContext.of(seeded_until_now))
    ]


# configuration errors ------------------------------------------------------------------------------------

BAD_SETTINGS = [
    ("TIERWISE_SKILLS__ASK__MONTHLY_BUDGET_USD", "-3", "skills.ask.monthly_budget_usd = '-3': "),
    ("TIERWISE_SKILLS__ASK__ON_BUDGET_EXCEEDED", "explode", "skills.ask.on_budget_exceeded = 'explode': "),
    ("TIERWISE_SKILLS__ASK__SHADOW_RATE", "1.5", "skills.ask.shadow_rate = '1.5': "),
    ("TIERWISE_USER_DAILY_REQUEST_CAP", "0", "user_daily_request_cap = '0': "),
    ("TIERWISE_DIGEST_CRON", "99 * * * *", "digest_cron = '99 * * * *': not a valid crontab expression"),
    ("TIERWISE_TIMEZONE", "Mars/Base", "timezone = 'Mars/Base': unknown time zone 'Mars/Base'"),
    (
        "TIERWISE_SKILLS__ASK__VALUE_PER_GOOD_ANSWER_USD",
        "-1",
        "skills.ask.value_per_good_answer_usd = '-1': ",
    ),
    (
        "TIERWISE_REVIEW__VALUE_PER_GOOD_ANSWER_USD",
        "lots",
        "review.value_per_good_answer_usd = 'lots': ",
    ),
    (
        "TIERWISE_SKILLS__ASK__VALUE_PER_GOOD_ANSWER_USD",
        "nan",
        "skills.ask.value_per_good_answer_usd = 'nan': ",
    ),
]


@pytest.mark.parametrize(("key", "value", "named"), BAD_SETTINGS, ids=[k for k, _, _ in BAD_SETTINGS])
@pytest.mark.parametrize("command", [["digest", "--week", W46], ["review"]], ids=["digest", "review"])
def test_invalid_economics_settings_are_rejected_at_start(
    key: str,
    value: str,
    named: str,
    command: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "argv", ["tierwise", *command])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == "tierwise: configuration error:"
    assert len(lines) == 2 and lines[1].startswith(f"  {named}")
    assert "Traceback" not in err


def test_the_installed_command_rejects_a_bad_cron_without_a_traceback(isolated: Path) -> None:
    exe = Path(sys.executable).with_name("tierwise")
    env = {"PATH": str(exe.parent), "HOME": str(isolated), "TIERWISE_DATA_DIR": str(isolated / "data")}
    done = subprocess.run(
        [str(exe), "digest", "--week", W46],
        env={**env, "TIERWISE_DIGEST_CRON": "99 * * * *"},
        cwd=isolated,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("tierwise: configuration error:\n  digest_cron = '99 * * * *': ")
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 2
