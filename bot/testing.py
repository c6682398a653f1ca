"""Test helpers for skill authors (like errbot's `testbot`): scripted model replies, a real engine on
a throwaway ledger, and one-line skill tests.

Installed as a pytest plugin (entry point `pytest11`), so a plugin package's tests get the
`testbot` fixture with no conftest:

    def test_brb(testbot):
        testbot.replies("small", '{"term": "BRB", "team": "platform", "definition": "..."}')
        assert testbot.ask("define BRB", skill="glossary").structured["team"] == "platform"

Everything real runs: routing, context selection from the packs, prompt assembly, litellm's call
path (with `mock_response`), parsing, validation, escalation and the ledger. Only the model's words
are scripted.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.app import build_engine

if TYPE_CHECKING:
    from bot.core.skills import Skill
    from bot.core.types import Reply
    from bot.pipeline.engine import Engine

ReplyFactory = Callable[[str, list[dict[str, Any]]], Any]


class Script:
    """A litellm `mock_response` that answers per tier from queues, then falls back to a default.

    A queued item may be text, or an exception instance (e.g. `litellm.Timeout`) to simulate failures.
    """

    def __init__(self, default: str | ReplyFactory = "ok") -> None:
        self.default = default
        self.queues: dict[str, deque[Any]] = defaultdict(deque)
        self.calls: list[tuple[str, list[dict[str, Any]]]] = []

    def on(self, tier: str, *replies: Any) -> Script:
        self.queues[tier].extend(replies)
        return self

    def __call__(self, tier: str, messages: list[dict[str, Any]]) -> Any:
        self.calls.append((tier, messages))
        if self.queues[tier]:
            return self.queues[tier].popleft()
        return self.default(tier, messages) if callable(self.default) else self.default


class TestBot:
    """A real Tierwise engine with scripted model replies, for skill tests."""

    __test__ = False  # not a test class, whatever pytest's name pattern says

    def __init__(
        self,
        data_dir: Path,
        skills: Iterable[Skill] = (),
        pack_dirs: Iterable[Path] = (),
        **settings: Any,
    ) -> None:
        from bot.config import load_settings
        from bot.core.skills import validate_skill
        from bot.models.llm import LLM

        self.script = Script()
        conf = load_settings(data_dir=data_dir, pack_dirs=list(pack_dirs), **settings)
        self.engine: Engine = build_engine(conf, llm=LLM(conf.tiers, mock_response=self.script))
        for skill in skills:  # declarations handed over directly, validated like discovered ones
            problem = validate_skill(skill, conf.tier_names, self.engine.packs)
            if problem:
                raise ValueError(f"skill {skill.name!r}: {problem}")
            self.engine.registry.skills[skill.name] = replace(skill, module=skill.module or "testbot")

    # Scripting --------------------------------------------------------------------------

    def replies(self, tier: str, *texts: Any) -> TestBot:
        """Queue what the model on `tier` answers next, in order."""
        self.script.on(tier, *texts)
        return self

    def default(self, reply: str | ReplyFactory) -> TestBot:
        """What every tier answers once its queue is empty."""
        self.script.default = reply
        return self

    @property
    def calls(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """(tier, messages) of every model call so far, judge and shadow calls included."""
        return self.script.calls

    def prompt(self, index: int = -1) -> str:
        """The full text of one model call's messages (the last by default), for asserting on context."""
        _, messages = self.calls[index]
        return "\n\n".join(str(m.get("content", "")) for m in messages)

    # Asking -----------------------------------------------------------------------------

    def ask(self, text: str, skill: str | None = None, tier: str | None = None, **request: Any) -> Reply:
        """One request through the whole pipeline; `skill=None` lets the router choose."""
        from bot.core.types import Request

        return self.engine.handle(Request(text=text, skill=skill, tier=tier, **request))

    def answer(self, text: str, skill: str | None = None, **request: Any) -> str:
        """The answer's text, asserting it succeeded (the common one-line test)."""
        reply = self.ask(text, skill=skill, **request)
        assert reply.ok, f"{reply.status}: {reply.text}"
        return reply.text


@pytest.fixture
def testbot(tmp_path: Path) -> Iterator[TestBot]:
    """A `TestBot` on a throwaway ledger in pytest's temporary folder."""
    yield TestBot(tmp_path / "tierwise-data")
