"""`tierwise …` end to end: CliRunner on `bot.adapters.cli.app` with tiers pointed at the fake OpenAI server
through environment variables, plus real subprocesses for `main()` exit codes and start-up time."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.adapters.cli import app
from bot.config import load_settings
from bot.context.packs import load_pack
from bot.ledger.models import Feedback, RequestRow
from bot.ledger.store import Ledger
from tests.paths import ROOT, TESTS

IN, OUT = 0.000001, 0.000002


FOOTER = re.compile(
    r"^— (?P<skill>\S+) · (?P<tier>\S+) · (?P<model>\S+) · (?P<pt>\d+)→(?P<ct>\d+) tokens · "
    r"\$(?P<cost>[0-9.]+|\?) · (?P<latency>[0-9.]+)s · request (?P<id>[0-9a-f]{16})$",
    re.MULTILINE,
)


@pytest.fixture
def cli(isolated: Path, fake_openai, monkeypatch: pytest.MonkeyPatch):
    """Every tier on the fake server (so nothing runs the embedded model), a test skill and pack."""
    pack = isolated / "packs" / "cli-docs"
    pack.mkdir(parents=True)
    (pack / "pack.toml").write_text('name = "cli-docs"\ndescription = "CLI test docs"\nowner = "qa"\n')
    (pack / "tokens.md").write_text("# Tokens\n\nReset a blorptastic token in the portal.\n")
    (pack / "printers.md").write_text("# Printers\n\nPrinters are on floor 2.\n")
    skills = isolated / "skills"
    # a copy: tests add broken modules to it
    shutil.copytree(
        TESTS / "skill_sources" / "helpdesk", skills, ignore=shutil.ignore_patterns("__pycache__")
    )
    monkeypatch.setenv("TIERWISE_PACK_DIRS", str(isolated / "packs"))
    monkeypatch.setenv("TIERWISE_SKILL_DIRS", str(skills))
    for tier, model in (("SMALL", "fast"), ("MEDIUM", "mid"), ("LARGE", "big")):
        monkeypatch.setenv(f"TIERWISE_TIERS__{tier}__MODEL", f"openai/{model}")
        monkeypatch.setenv(f"TIERWISE_TIERS__{tier}__API_BASE", fake_openai.url)
        monkeypatch.setenv(f"TIERWISE_TIERS__{tier}__DATA_BOUNDARY", "local")
        monkeypatch.setenv(f"TIERWISE_TIERS__{tier}__MAX_RETRIES", "0")
    monkeypatch.setenv("TIERWISE_TIERS__SMALL__INPUT_COST_PER_TOKEN", str(IN))
    monkeypatch.setenv("TIERWISE_TIERS__SMALL__OUTPUT_COST_PER_TOKEN", str(OUT))
    monkeypatch.setenv("COLUMNS", "250")
    return fake_openai


def run(*args: str, input: str | None = None):
    """Invoke the CLI in-process. `setup_logging` attaches a handler to the root logger bound to
    this invocation's stderr; drop it afterwards so the next invocation does not log into a
    closed stream (in real use there is one invocation per process)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return CliRunner().invoke(app, list(args), input=input)
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


def ledger() -> Ledger:
    return Ledger(load_settings().effective_database_url)


def all_rows() -> list[RequestRow]:
    with ledger().session() as s:
        return list(s.exec(select(RequestRow).order_by(RequestRow.created_at)))


def all_feedback() -> list[Feedback]:
    with ledger().session() as s:
        return list(s.exec(select(Feedback)))


def ask_once(cli, text: str = "How do I reset my blorptastic token?", **reply) -> str:
    cli.script("fast", {"content": "Use the portal.", "prompt_tokens": 120, "completion_tokens": 7, **reply})
    result = run("ask", "--skill", "helpdesk", text)
    assert result.exit_code == 0, result.output
    return FOOTER.search(result.stdout)["id"]


# ---------------------------------------------------------------------------------------------
# ask


def test_ask_prints_answer_and_footer(cli) -> None:
    cli.script("fast", {"content": "Use the portal.", "prompt_tokens": 120, "completion_tokens": 7})
    result = run("ask", "How", "do", "I", "reset", "my", "blorptastic", "token?")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Use the portal.\n")
    footer = FOOTER.search(result.stdout)
    assert footer, result.stdout
    [row] = all_rows()
    assert footer["skill"] == "helpdesk" == row.skill  # routed by its description
    assert footer["tier"] == "small" == row.tier
    assert footer["model"] == "fast" == row.model_used
    assert (int(footer["pt"]), int(footer["ct"])) == (120, 7) == (row.prompt_tokens, row.completion_tokens)
    assert footer["cost"] == f"{120 * IN + 7 * OUT:.6f}"
    assert float(footer["latency"]) == pytest.approx(row.latency_ms / 1000, abs=0.006)
    assert footer["id"] == row.id
    assert row.source == "cli" and row.user_id == "cli"
    assert cli.requests[-1]["messages"][-1]["content"] == "How do I reset my blorptastic token?"
    assert "embedded" not in result.stderr  # no tier runs the embedded model here


def test_ask_with_skill_and_tier(cli) -> None:
    cli.script("mid", "medium answer")
    result = run("ask", "--skill", "/ask", "--tier", "medium", "What is the printer floor?")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("medium answer\n")
    footer = FOOTER.search(result.stdout)
    assert (footer["skill"], footer["tier"], footer["model"]) == ("ask", "medium", "mid")
    assert footer["cost"] == "?"  # medium has no price here and the map does not know "mid"
    assert [r["model"] for r in cli.requests] == ["mid"]
    [row] = all_rows()
    assert row.route_reason.startswith("--skill: ask; tier medium (operator override)")


def test_ask_json(cli) -> None:
    cli.script("fast", {"content": "Use the portal.", "prompt_tokens": 11, "completion_tokens": 3})
    result = run("ask", "--json", "-s", "helpdesk", "reset token")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    [row] = all_rows()
    assert data["status"] == "ok" and data["text"] == "Use the portal."
    assert data["request_id"] == row.id
    assert (data["prompt_tokens"], data["completion_tokens"]) == (11, 3)
    assert data["pack_hash"] == row.pack_hash
    assert data["footer"].startswith("helpdesk · small · fast · ")


def test_ask_reads_stdin_when_no_argument(cli) -> None:
    cli.script("fast", "from stdin")
    result = run("ask", "--skill", "helpdesk", input="question on stdin\n")
    assert result.exit_code == 0, result.output
    assert cli.requests[-1]["messages"][-1]["content"] == "question on stdin"


def _error_line(result, prefix: str) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_ask_unknown_skill_exits_2_listing_valid_ones(cli) -> None:
    result = run("ask", "--skill", "nope", "hello")
    assert result.exit_code == 2
    line = _error_line(result, "tierwise: unknown skill 'nope'. Valid skills: ")
    assert "ask" in line and "helpdesk" in line
    assert result.stdout == ""
    assert cli.requests == [] and all_rows() == []


def test_ask_unknown_tier_exits_2_listing_valid_ones(cli) -> None:
    result = run("ask", "--tier", "xxl", "hello")
    assert result.exit_code == 2
    line = _error_line(result, "tierwise: unknown tier 'xxl'.")
    assert line == "tierwise: unknown tier 'xxl'. Valid tiers: small, medium, large"
    assert cli.requests == [] and all_rows() == []


@pytest.mark.parametrize("args", [[], ["   "], ["--skill", "helpdesk"]])
def test_ask_empty_exits_2_with_usage_hint(cli, args: list[str]) -> None:
    result = run("ask", *args)
    assert result.exit_code == 2
    line = _error_line(result, "tierwise: nothing to ask.")
    assert "Usage: tierwise ask" in line
    assert cli.requests == []
    assert not (Path(os.environ["TIERWISE_DATA_DIR"]) / "tierwise.db").exists() or all_rows() == []


def test_ask_model_error_exits_1_with_one_line(cli) -> None:
    cli.script("fast", {"status": 500, "content": "upstream exploded"})
    result = run("ask", "--skill", "helpdesk", "hello")
    assert result.exit_code == 1
    [row] = all_rows()
    assert (
        result.stdout.splitlines()[0]
        == f"Sorry: the model provider had an internal error. (request {row.id})"
    )
    assert "Traceback" not in result.output
    assert row.status == "error" and "upstream exploded" in row.error


# ---------------------------------------------------------------------------------------------
# shell


def test_shell_session(cli) -> None:
    cli.script("fast", "first answer", "second answer")
    lines = [
        "How do I reset my blorptastic token?",
        "/ask What floor are the printers on?",
        "+ great",
        "-",
        "/nonexistent hello",
        "/usage",
        "/quit",
        "never reached",
    ]
    result = run("shell", input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "first answer" in out and "second answer" in out
    assert "Unknown skill 'nonexistent'" in out
    first, second = all_rows()
    assert (first.skill, first.source, first.user_id) == ("helpdesk", "shell", "shell")
    assert (second.skill, second.route_reason.split(";")[0]) == ("ask", "shell command: ask")
    assert f"Recorded 👍 for request {second.id}." in out
    assert f"Updated 👎 for request {second.id}." in out
    [feedback] = all_feedback()
    assert (feedback.request_id, feedback.user_id, feedback.score) == (second.id, "shell", -1)
    assert feedback.comment == "great"  # a bare "-" keeps the comment
    assert feedback.source == "shell"
    usage = {
        m["skill"]: (int(m["n"]), int(m["up"]), int(m["down"]))
        for m in re.finditer(
            r"^(?P<skill>ask|helpdesk) +(?P<n>\d+) +[0-9.]+ +(?P<up>\d+) +(?P<down>\d+)$", out, re.M
        )
    }
    assert usage == {"ask": (1, 0, 1), "helpdesk": (1, 0, 0)}
    assert len(cli.requests) == 2  # the line after /quit was never handled
    # The shell sends recent turns as history.
    assert [m["role"] for m in cli.requests[1]["messages"]] == ["system", "user", "assistant", "user"]


def test_shell_rating_before_any_answer(cli) -> None:
    result = run("shell", input="+\n")
    assert result.exit_code == 0
    assert "Nothing to rate yet" in result.stdout
    assert all_feedback() == []


# ---------------------------------------------------------------------------------------------
# skills, packs


def test_skills_command(cli, isolated: Path) -> None:
    (isolated / "skills" / "broken.py").write_text("import tierwise_missing_module_xyz\n")
    result = run("skills", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    by_name = {s["name"]: s for s in data["skills"]}
    assert by_name["helpdesk"] == {
        "name": "helpdesk",
        "command": "/helpdesk",
        "tier": "small",
        "tier_source": "skill default",
        "packs": ["cli-docs"],
        "structured": False,
        "sensitive": False,
        "description": "Answer blorptastic helpdesk questions",
    }
    assert "ask" in by_name
    assert any(p.startswith(str(isolated / "skills" / "broken.py")) for p in data["problems"])
    assert "warning: skill skipped: " in result.stderr and "broken.py" in result.stderr
    table = run("skills")
    assert table.exit_code == 0
    assert "helpdesk" in table.stdout and "/helpdesk" in table.stdout and "cli-docs" in table.stdout


def test_packs_command(cli, isolated: Path) -> None:
    broken = isolated / "packs" / "broken-pack"
    broken.mkdir()
    (broken / "doc.md").write_text("# no toml")
    result = run("packs", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    by_name = {p["name"]: p for p in data["packs"]}
    expected = load_pack(isolated / "packs" / "cli-docs")
    assert by_name["cli-docs"]["documents"] == 2
    assert by_name["cli-docs"]["hash"] == expected.hash
    assert by_name["cli-docs"]["owner"] == "qa"
    assert "company-handbook" in by_name
    assert data["problems"] == [f"{broken / 'pack.toml'}: missing pack.toml"]
    assert f"warning: pack skipped: {broken / 'pack.toml'}" in result.stderr
    table = run("packs")
    row = next(line for line in table.stdout.splitlines() if "cli-docs" in line)
    assert expected.hash in row and " 2 " in row


# ---------------------------------------------------------------------------------------------
# usage


def test_usage_json_shows_the_request(cli) -> None:
    request_id = ask_once(cli)
    run("feedback", request_id, "+1", "--comment", "spot on")
    result = run("usage", "--since", "7d", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    [row] = all_rows()
    [req] = [r for r in data["requests"] if r["id"] == request_id]
    assert (req["prompt_tokens"], req["completion_tokens"]) == (120, 7)
    assert req["latency_ms"] == row.latency_ms
    assert req["pack_hash"] == row.pack_hash == f"cli-docs@{load_pack(Path('packs/cli-docs')).hash}"
    assert req["tier"] == "small" and req["model_requested"] == "openai/fast" and req["model_used"] == "fast"
    assert req["cost_usd"] == pytest.approx(120 * IN + 7 * OUT, rel=1e-12)
    assert req["feedback"] == [{"user": "cli", "score": 1, "comment": "spot on"}]
    [skill] = data["skills"]
    assert skill["skill"] == "helpdesk" and skill["requests"] == 1 and skill["thumbs_up"] == 1
    assert skill["p95_latency_ms"] == row.latency_ms


def test_usage_table_and_window(cli) -> None:
    assert "No requests since" in run("usage").stdout
    ask_once(cli)
    table = run("usage", "--since", "24h")
    assert table.exit_code == 0
    line = next(line for line in table.stdout.splitlines() if "helpdesk" in line)
    assert "120/7" in line
    future = run("usage", "--since", "2999-01-01", "--json")
    assert json.loads(future.stdout)["requests"] == []
    bad = run("usage", "--since", "last tuesday")
    assert bad.exit_code == 2
    assert "--since 'last tuesday'" in bad.stderr


# ---------------------------------------------------------------------------------------------
# tier


def test_tier_set_and_history(cli) -> None:
    assert run("tier", "history").stdout.strip() == "No tier changes recorded."
    result = run("tier", "set", "helpdesk", "medium", "--reason", "answers too short", "--by", "U0ADMIN")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "helpdesk: small → medium (by U0ADMIN: answers too short)"
    result = run("tier", "set", "ask", "large", "-r", "harder questions")
    assert result.exit_code == 0, result.output
    history = run("tier", "history", "helpdesk")
    assert history.exit_code == 0
    assert "answers too short" in history.stdout and "U0ADMIN" in history.stdout
    assert "harder questions" not in history.stdout
    everything = run("tier", "history").stdout
    assert everything.index("harder questions") < everything.index("answers too short")  # newest first
    assert run("tier", "history", "summarize").stdout.strip() == "No tier changes recorded for summarize."
    # The assignment takes effect on the next request.
    cli.script("mid", "from medium")
    result = run("ask", "--skill", "helpdesk", "reset token")
    assert FOOTER.search(result.stdout)["tier"] == "medium"
    assert [r.tier for r in ledger().tier_history()] == ["large", "medium"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "large", "--reason", "x"], "unknown skill 'nope'. Valid skills: "),
        (["helpdesk", "huge", "--reason", "x"], "unknown tier 'huge'. Valid tiers: small, medium, large"),
        (["helpdesk", "large", "--reason", "  "], "a reason is required"),
    ],
)
def test_tier_set_rejects_bad_input(cli, args: list[str], message: str) -> None:
    result = run("tier", "set", *args)
    assert result.exit_code == 2
    assert message in _error_line(result, "tierwise: ")
    assert ledger().tier_history() == []


def test_tier_set_requires_a_reason(cli) -> None:
    result = run("tier", "set", "helpdesk", "large")
    assert result.exit_code == 2
    assert "--reason" in result.output


# ---------------------------------------------------------------------------------------------
# feedback


def test_feedback_records_then_updates(cli) -> None:
    request_id = ask_once(cli)
    result = run("feedback", request_id, "+1", "--comment", "clear and right")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"Recorded +1 for request {request_id}."
    result = run("feedback", request_id, "down", "--comment", "on reflection, outdated")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"Updated down for request {request_id}."
    result = run("feedback", request_id, "up", "--user", "U2")
    assert result.stdout.strip().startswith("Recorded")
    feedback = {f.user_id: (f.score, f.comment) for f in all_feedback()}
    assert feedback == {"cli": (-1, "on reflection, outdated"), "U2": (1, None)}


def test_feedback_minus_one_as_documented(cli) -> None:
    request_id = ask_once(cli)
    result = run("feedback", request_id, "-1", "--comment", "wrong floor")
    assert result.exit_code == 0, result.output
    [feedback] = all_feedback()
    assert (feedback.score, feedback.comment) == (-1, "wrong floor")


def test_feedback_bad_input(cli) -> None:
    request_id = ask_once(cli)
    result = run("feedback", "0000000000000000", "+1")
    assert result.exit_code == 2
    assert _error_line(result, "tierwise: ") == "tierwise: no request with id '0000000000000000'"
    result = run("feedback", request_id, "5")
    assert result.exit_code == 2
    assert _error_line(result, "tierwise: ") == "tierwise: score '5': use +1 or -1"
    assert all_feedback() == []


# ---------------------------------------------------------------------------------------------
# config, db upgrade


def test_config_command(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-cli-secret-token")
    result = run("config")
    assert result.exit_code == 0, result.output
    assert "xoxb-cli-secret-token" not in result.output
    data = json.loads(result.stdout)
    assert data["tiers"]["small"]["api_base"] == cli.url
    assert data["tiers"]["small"]["input_cost_per_token"] == IN
    assert data["slack_bot_token"] == "********"
    assert [str(p) for p in data["skill_dirs"]] == [os.environ["TIERWISE_SKILL_DIRS"]]


def test_db_upgrade(cli, isolated: Path) -> None:
    from bot.ledger import db

    result = run("db", "upgrade")
    assert result.exit_code == 0, result.output
    path = isolated / "data" / "tierwise.db"
    match = re.fullmatch(r"Database sqlite:///(.+) is at revision (\S+)\.\n", result.stdout)
    assert match and Path(match[1]) == path
    engine = db.make_engine(f"sqlite:///{path.as_posix()}")
    assert db.current_revision(engine) == match[2]
    assert "requests" in db.table_names(engine)
    again = run("db", "upgrade")
    assert again.exit_code == 0 and again.stdout == result.stdout


# ---------------------------------------------------------------------------------------------
# The real entry point, in subprocesses


def _main(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TIERWISE_", "SLACK_"))}
    base.update(PYTHONPATH=str(ROOT), TIERWISE_DATA_DIR=str(cwd / "data"), **env)
    return subprocess.run(
        [sys.executable, "-c", "from bot.adapters.cli import main; main()", *args],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def test_help_is_fast(isolated: Path) -> None:
    """--help stays fast because it imports none of the heavy libraries (litellm alone takes seconds).
    Checked by what is imported, not by a wall-clock limit, which a loaded machine would break."""
    proc = _main(["--help"], isolated)
    assert proc.returncode == 0, proc.stderr
    for command in ("ask", "shell", "skills", "packs", "usage", "feedback", "config", "tier", "db"):
        assert command in proc.stdout
    probe = (
        "import sys\n"
        "sys.argv = ['tierwise', '--help']\n"
        "from bot.adapters.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('litellm', 'llama_cpp', 'openai', 'slack_bolt', 'slack_sdk', 'matplotlib', 'bm25s',\n"
        "         'numpy', 'apscheduler', 'sigma', 'opentelemetry', 'prometheus_client')\n"
        "print(','.join(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIERWISE_", "SLACK_"))}
    env.update(PYTHONPATH=str(ROOT), TIERWISE_DATA_DIR=str(isolated / "data"))
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=isolated, env=env, capture_output=True, text=True, timeout=60
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stderr.strip().splitlines()[-1:] in ([], [""]), f"--help imported: {loaded.stderr}"


def test_main_exit_codes(isolated: Path) -> None:
    empty = _main(["ask"], isolated)
    assert empty.returncode == 2
    assert empty.stderr.strip().splitlines()[-1].startswith("tierwise: nothing to ask.")
    unknown = _main(["ask", "--skill", "nope", "hello"], isolated)
    assert unknown.returncode == 2
    assert (
        unknown.stderr.strip().splitlines()[-1].startswith("tierwise: unknown skill 'nope'. Valid skills: ")
    )
    assert "Traceback" not in unknown.stderr
    bad = _main(["usage"], isolated, TIERWISE_MAX_INPUT_TOKENS="zero")
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "tierwise: configuration error:",
        "  max_input_tokens = 'zero': Input should be a valid integer, unable to parse string as an integer",
    ]
