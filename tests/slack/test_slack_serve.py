"""`tierwise serve` as a process: HTTP or Socket Mode from the settings, a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bot.adapters.slack.client import api_base_url
from bot.adapters.slack.server import serve
from bot.config import ConfigError, load_settings
from tests.fakes.fake_slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.slack_helpers import slack_fixture  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(port: int) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _wait(condition, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _start(mode: str, slack: FakeSlack, data: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIERWISE_", "SLACK_"))}
    env.update(
        TIERWISE_DATA_DIR=str(data),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
    )
    if mode == "socket":
        env["SLACK_APP_TOKEN"] = APP_TOKEN
    command = [sys.executable, "-m", "bot.adapters.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    data.parent.mkdir(parents=True)
    return subprocess.Popen(command, env=env, cwd=data.parent, stderr=subprocess.PIPE, text=True)


def test_serve_runs_in_both_modes_and_stops_on_sigterm(slack: FakeSlack, tmp_path: Path) -> None:
    """HTTP (no app token: /healthz answers) and Socket Mode (connects), started side by side."""
    port = _free_port()
    processes = {
        "http": _start("http", slack, tmp_path / "http" / "data", port),
        "socket": _start("socket", slack, tmp_path / "socket" / "data", _free_port()),
    }
    try:
        _wait(lambda: _healthy(port) or processes["http"].poll() is not None)
        slack.socket.wait_connected(timeout=30)
        for process in processes.values():
            assert process.poll() is None
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            assert process.wait(timeout=15) == 0
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
    for process in processes.values():
        stderr = process.stderr.read() if process.stderr else ""
        for secret in (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET):
            assert secret not in stderr


def test_serve_needs_its_tokens() -> None:
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        serve(_engine_stub(load_settings()))
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        serve(_engine_stub(load_settings(slack_bot_token=BOT_TOKEN)))


def _engine_stub(settings: object) -> object:
    class Stub:
        pass

    stub = Stub()
    stub.settings = settings  # type: ignore[attr-defined]
    return stub


def test_api_url_gets_its_trailing_slash() -> None:
    assert api_base_url(None) == "https://slack.com/api/"
    assert api_base_url("https://slack-gov.com/api") == "https://slack-gov.com/api/"
    assert api_base_url("http://127.0.0.1:9/api/") == "http://127.0.0.1:9/api/"


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


def test_settling_the_heap_freezes_what_lives_and_frees_what_does_not() -> None:
    """Start-up objects leave the collector's walk (gc.freeze); start-up garbage is freed first, and
    what is made later is collected as usual."""
    import gc
    import weakref

    from bot.adapters.slack.server import settle_heap

    kept, dropped = _Node(), _Node()
    gone = weakref.ref(dropped)
    del dropped
    try:
        settle_heap()
        assert gone() is None  # collected before the freeze, not kept for ever
        assert gc.get_freeze_count() > 0
        assert not any(o is kept for o in gc.get_objects())  # frozen: out of every generation
        later = _Node()
        later_ref = weakref.ref(later)
        del later
        gc.collect()
        assert later_ref() is None
    finally:
        gc.unfreeze()


def test_the_warm_up_imports_what_the_first_model_call_would() -> None:
    """litellm, and the OpenAI SDK's resource classes a client imports on its first `.chat` (about a
    second of CPU that the first answer would otherwise pay, with every other answer waiting on the GIL)."""
    code = (
        "import sys\n"
        "from bot.models.llm import litellm_module\n"
        "from bot.adapters.slack.server import warm_up\n"
        "litellm_module()\n"
        "before = 'openai.resources.chat' in sys.modules\n"
        "warm_up()\n"
        "print(before, 'openai.resources.chat' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    assert out == ["False", "True"]
