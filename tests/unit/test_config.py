"""Settings: sources (env, .env, tierwise.toml, $TIERWISE_CONFIG), precedence, tiers, errors, masking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.config import (
    EMBEDDED_MODEL,
    ConfigError,
    RetentionSettings,
    load_settings,
    redacted,
    redacted_url,
    valid_cron,
)
from tests.paths import ROOT


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# Sources


def test_defaults_are_three_embedded_local_tiers(isolated: Path) -> None:
    s = load_settings()
    assert s.tier_names == ["small", "medium", "large"]
    for tier in s.tiers.values():
        assert tier.model == EMBEDDED_MODEL
        assert tier.embedded
        assert tier.boundary == "local"
    assert s.embedded_tiers() == ["small", "medium", "large"]
    assert s.data_dir == isolated / "data"  # from TIERWISE_DATA_DIR set by the fixture
    assert s.effective_database_url == f"sqlite:///{(isolated / 'data' / 'tierwise.db').as_posix()}"


def test_environment_variables_with_prefix_and_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERWISE_MAX_INPUT_TOKENS", "1234")
    monkeypatch.setenv("TIERWISE_TIERS__SMALL__MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv("TIERWISE_TIERS__SMALL__TIMEOUT", "12.5")
    monkeypatch.setenv("TIERWISE_ADMINS", "U1, U2")
    monkeypatch.setenv("TIERWISE_SKILLS__ASK__CHANNELS", "secops,#ops")
    monkeypatch.setenv("TIERWISE_DEFAULT_SKILL", "summarize")
    s = load_settings()
    assert s.max_input_tokens == 1234
    assert s.tiers["small"].model == "openai/gpt-4o-mini"
    assert s.tiers["small"].timeout == 12.5
    assert s.tiers["small"].boundary == "external"  # a remote model is external unless declared local
    assert s.admins == ["U1", "U2"]
    assert s.is_admin("U2") and not s.is_admin("U3") and not s.is_admin(None)
    assert s.skill_settings("ask").channels == ["secops", "#ops"]
    assert s.default_skill == "summarize"


def test_dotenv_file_in_working_directory(isolated: Path) -> None:
    write(
        isolated / ".env",
        "TIERWISE_MAX_INPUT_TOKENS=2345\nTIERWISE_TIERS__LARGE__MODEL=openai/gpt-4o\nSLACK_BOT_TOKEN=xoxb-from-dotenv\n",
    )
    s = load_settings()
    assert s.max_input_tokens == 2345
    assert s.tiers["large"].model == "openai/gpt-4o"
    assert s.tiers["small"].model == EMBEDDED_MODEL
    assert s.slack_bot_token is not None
    assert s.slack_bot_token.get_secret_value() == "xoxb-from-dotenv"
    assert "xoxb-from-dotenv" not in repr(s)


def test_toml_in_working_directory(isolated: Path) -> None:
    write(
        isolated / "tierwise.toml",
        'max_input_tokens = 3456\ntimezone = "Europe/Paris"\n[tiers.medium]\nmodel = "openai/gpt-4o-mini"\n'
        'input_cost_per_token = 0.000001\n[skills.ask]\ntier = "medium"\nchannels = ["it-help"]\n',
    )
    s = load_settings()
    assert s.max_input_tokens == 3456
    assert s.timezone == "Europe/Paris"
    assert s.tiers["medium"].model == "openai/gpt-4o-mini"
    assert s.tiers["medium"].priced
    assert s.skill_settings("ask").tier == "medium"
    assert s.skill_settings("ask").channels == ["it-help"]
    assert s.skill_settings("unknown-skill").tier is None


def test_tierwise_config_path_wins_over_cwd_toml(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(isolated / "tierwise.toml", "max_input_tokens = 555\n")
    other = write(isolated / "elsewhere" / "prod.toml", "max_input_tokens = 777\n")
    assert load_settings().max_input_tokens == 555
    monkeypatch.setenv("TIERWISE_CONFIG", str(other))
    assert load_settings().max_input_tokens == 777
    assert redacted(load_settings())["config_file"] == str(other)


def test_precedence_env_over_dotenv_over_toml(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(isolated / "tierwise.toml", "max_input_tokens = 1111\nevent_ttl_hours = 11\nlog_level = 'ERROR'\n")
    write(isolated / ".env", "TIERWISE_MAX_INPUT_TOKENS=2222\nTIERWISE_EVENT_TTL_HOURS=22\n")
    monkeypatch.setenv("TIERWISE_MAX_INPUT_TOKENS", "3333")
    s = load_settings()
    assert s.max_input_tokens == 3333  # env beats .env and toml
    assert s.event_ttl_hours == 22  # .env beats toml
    assert s.log_level == "ERROR"  # toml beats the default
    monkeypatch.delenv("TIERWISE_MAX_INPUT_TOKENS")
    assert load_settings().max_input_tokens == 2222
    (isolated / ".env").unlink()
    assert load_settings().max_input_tokens == 1111
    # Explicit overrides (the programmatic API) beat everything.
    monkeypatch.setenv("TIERWISE_MAX_INPUT_TOKENS", "3333")
    assert load_settings(max_input_tokens=4444).max_input_tokens == 4444


def test_nested_precedence_merges_fields_of_one_tier(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        isolated / "tierwise.toml",
        '[tiers.small]\nmodel = "openai/from-toml"\napi_base = "http://127.0.0.1:9/v1"\ntimeout = 30\n',
    )
    write(isolated / ".env", "TIERWISE_TIERS__SMALL__TIMEOUT=40\n")
    monkeypatch.setenv("TIERWISE_TIERS__SMALL__MODEL", "openai/from-env")
    small = load_settings().tiers["small"]
    assert small.model == "openai/from-env"
    assert small.timeout == 40
    assert small.api_base == "http://127.0.0.1:9/v1"  # the toml value survives the env override


# ---------------------------------------------------------------------------------------------
# Tiers


def test_configuring_only_small_keeps_medium_and_large_embedded(isolated: Path) -> None:
    write(isolated / "tierwise.toml", '[tiers.small]\nmodel = "openai/gpt-4o-mini"\n')
    s = load_settings()
    assert s.tier_names == ["small", "medium", "large"]
    assert s.tiers["small"].model == "openai/gpt-4o-mini"
    assert not s.tiers["small"].embedded
    assert s.tiers["medium"].model == EMBEDDED_MODEL
    assert s.tiers["large"].model == EMBEDDED_MODEL
    assert s.embedded_tiers() == ["medium", "large"]


def test_configuring_small_and_large_keeps_order(isolated: Path) -> None:
    write(
        isolated / "tierwise.toml",
        '[tiers.large]\nmodel = "openai/gpt-4o"\n[tiers.small]\nmodel = "openai/gpt-4o-mini"\n',
    )
    s = load_settings()
    assert s.tier_names == ["small", "medium", "large"]
    assert s.embedded_tiers() == ["medium"]


def test_custom_ladder_replaces_defaults_in_file_order(isolated: Path) -> None:
    write(
        isolated / "tierwise.toml",
        '[tiers.haiku]\nmodel = "anthropic/claude-3-5-haiku-latest"\n'
        '[tiers.sonnet]\nmodel = "anthropic/claude-sonnet-4-5"\n'
        '[tiers.opus]\nmodel = "anthropic/claude-opus-4-1"\n',
    )
    s = load_settings()
    assert s.tier_names == ["haiku", "sonnet", "opus"]  # file order, not alphabetical
    assert "small" not in s.tiers
    assert s.embedded_tiers() == []


def test_tier_order_reorders_the_ladder(isolated: Path) -> None:
    write(
        isolated / "tierwise.toml",
        'tier_order = ["fast", "mid", "best"]\n'
        '[tiers.best]\nmodel = "openai/gpt-4o"\n[tiers.fast]\nmodel = "openai/gpt-4o-mini"\n'
        '[tiers.mid]\nmodel = "openai/gpt-4.1-mini"\n',
    )
    assert load_settings().tier_names == ["fast", "mid", "best"]


def test_tier_order_from_env_as_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERWISE_TIER_ORDER", "large,medium,small")
    assert load_settings().tier_names == ["large", "medium", "small"]


@pytest.mark.parametrize("order", ['["small", "medium"]', '["small", "medium", "large", "huge"]'])
def test_tier_order_must_name_exactly_the_tiers(isolated: Path, order: str) -> None:
    write(isolated / "tierwise.toml", f"tier_order = {order}\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "tier_order" in str(info.value)
    assert "large" in str(info.value) and "small" in str(info.value)


# ---------------------------------------------------------------------------------------------
# Bad values


@pytest.mark.parametrize(
    ("env", "toml", "key", "value"),
    [
        ({"TIERWISE_MAX_INPUT_TOKENS": "-5"}, "", "max_input_tokens", "-5"),
        ({"TIERWISE_MAX_INPUT_TOKENS": "lots"}, "", "max_input_tokens", "lots"),
        ({"TIERWISE_LOG_LEVEL": "LOUD"}, "", "log_level", "LOUD"),
        (
            {"TIERWISE_TIERS__SMALL__MODEL": "openai/x", "TIERWISE_TIERS__SMALL__TIMEOUT": "soon"},
            "",
            "tiers.small.timeout",
            "soon",
        ),
        ({}, '[tiers.small]\nmodel = "openai/x"\ntemperature = 7\n', "tiers.small.temperature", "7"),
        (
            {},
            '[tiers.small]\nmodel = "openai/x"\ndata_boundary = "cloud"\n',
            "tiers.small.data_boundary",
            "cloud",
        ),
        ({}, '[tiers.small]\nmodel = "openai/x"\nmodle = "typo"\n', "tiers.small.modle", "typo"),
        ({}, 'timezone = "Mars/Olympus_Mons"\n', "timezone", "Mars/Olympus_Mons"),
        ({}, 'digest_cron = "every monday"\n', "digest_cron", "every monday"),
        ({}, '[skills.ask]\ntier = "gigantic"\n', "skills.ask.tier", "gigantic"),
        ({}, 'judge_tier = "oracle"\n', "judge_tier", "oracle"),
        ({}, "[skills.ask]\nshadow_rate = 1.5\n", "skills.ask.shadow_rate", "1.5"),
    ],
)
def test_bad_value_raises_config_error_naming_key_and_value(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], toml: str, key: str, value: str
) -> None:
    for name, val in env.items():
        monkeypatch.setenv(name, val)
    if toml:
        write(isolated / "tierwise.toml", toml)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert key in message
    assert value in message
    assert "Traceback" not in message


def test_several_problems_are_one_line_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERWISE_MAX_INPUT_TOKENS", "-1")
    monkeypatch.setenv("TIERWISE_LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigError) as info:
        load_settings()
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert any(line.startswith("max_input_tokens = '-1'") for line in lines)
    assert any(line.startswith("log_level = 'LOUD'") for line in lines)


def test_invalid_toml_and_missing_config_file(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(isolated / "tierwise.toml", "max_input_tokens = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()
    missing = isolated / "nope" / "tierwise.toml"
    monkeypatch.setenv("TIERWISE_CONFIG", str(missing))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(missing) in str(info.value)
    assert "does not exist" in str(info.value)


def test_cli_config_exits_2_with_one_line_per_problem(isolated: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIERWISE_", "SLACK_"))}
    env.update(
        TIERWISE_DATA_DIR=str(isolated / "data"),
        TIERWISE_MAX_INPUT_TOKENS="-1",
        TIERWISE_LOG_LEVEL="LOUD",
        TIERWISE_TIMEZONE="Nowhere/Special",
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.run(
        [sys.executable, "-c", "from bot.adapters.cli import main; main()", "config"],
        cwd=isolated,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == "tierwise: configuration error:"
    problems = lines[1:]
    assert len(problems) == 3
    assert any("max_input_tokens" in p and "'-1'" in p for p in problems)
    assert any("log_level" in p and "'LOUD'" in p for p in problems)
    assert any("timezone" in p and "Nowhere/Special" in p for p in problems)


# ---------------------------------------------------------------------------------------------
# Masking


SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-botsecretvalue",
    "SLACK_SIGNING_SECRET": "signing-secret-value-42",
    "SLACK_APP_TOKEN": "xapp-1-appsecretvalue",
    "MY_PROVIDER_KEY": "sk-provider-secret-987654321",
}


def _secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TIERWISE_DATABASE_URL", "postgresql+psycopg://tierwise:hunter2pw@db.internal:5432/tw")
    monkeypatch.setenv("TIERWISE_TIERS__SMALL__MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv("TIERWISE_TIERS__SMALL__API_KEY_ENV", "MY_PROVIDER_KEY")
    monkeypatch.setenv("TIERWISE_TIERS__MEDIUM__MODEL", "openai/gpt-4o")
    monkeypatch.setenv("TIERWISE_TIERS__MEDIUM__API_KEY_ENV", "UNSET_PROVIDER_KEY")


def test_redacted_masks_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    _secret_env(monkeypatch)
    data = redacted(load_settings())
    dumped = json.dumps(data, default=str)
    for value in [*SECRETS.values(), "hunter2pw"]:
        assert value not in dumped
    assert data["slack_bot_token"] == "********"
    assert data["slack_signing_secret"] == "********"
    assert data["slack_app_token"] == "********"
    assert data["database_url"] == "postgresql+psycopg://tierwise:********@db.internal:5432/tw"
    assert data["effective_database_url"] == data["database_url"]
    assert data["tiers"]["small"]["api_key_env"] == "MY_PROVIDER_KEY"  # the name is fine to show
    assert data["tiers"]["small"]["api_key"] == "********"
    assert data["tiers"]["medium"]["api_key"] == "(not set)"
    assert data["tiers"]["large"]["api_key"] is None


def test_cli_config_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.adapters.cli import app

    _secret_env(monkeypatch)
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    for value in [*SECRETS.values(), "hunter2pw"]:
        assert value not in result.output
    data = json.loads(result.stdout)
    assert data["slack_bot_token"] == "********"
    assert data["tiers"]["small"]["model"] == "openai/gpt-4o-mini"
    assert data["tiers"]["small"]["api_key"] == "********"
    assert "hunter2pw" not in data["effective_database_url"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:********@h/db"),
        ("postgresql://u:p@ss@h:5432/db", "postgresql://u:********@h:5432/db"),
        ("sqlite:///data/tierwise.db", "sqlite:///data/tierwise.db"),
    ],
)
def test_redacted_url(url: str, expected: str) -> None:
    assert redacted_url(url) == expected


def test_both_cron_settings_share_one_check() -> None:
    from pydantic import ValidationError

    assert valid_cron("30 0 * * *") == "30 0 * * *"
    with pytest.raises(ValueError, match="not a valid crontab expression"):
        valid_cron("every monday")
    with pytest.raises(ValidationError, match="not a valid crontab expression"):
        RetentionSettings(purge_cron="every monday")
    with pytest.raises(
        ConfigError, match="digest_cron = '61 \\* \\* \\* \\*': not a valid crontab expression"
    ):
        load_settings(digest_cron="61 * * * *")
