"""Verifiers: checks that are part of a skill's declaration and run on every structured answer.

A verifier is a pure function `(output, context) -> Check` over the validated output model and the
request (its text and the loaded packs). It never raises for a bad answer: it returns `failed` with a
reason. When it cannot decide (no sample events, a catalog missing) it returns `not_run` with why, and
the answer still goes out. A verifier that crashes counts as `not_run`, never as a failed answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from pathlib import Path

    from bot.context.packs import Pack

log = logging.getLogger(__name__)

CheckStatus = Literal["passed", "failed", "not_run"]
STATUSES: tuple[CheckStatus, ...] = ("passed", "failed", "not_run")
DETAIL_LIMIT = 4000  # characters of verify_detail kept on the ledger row


@dataclass(frozen=True)
class Check:
    """One verifier's verdict. `show` is a line for the user (e.g. a hunt's execution preview)."""

    name: str
    status: CheckStatus
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)
    show: str | None = None

    @classmethod
    def passed(cls, name: str, reason: str, show: str | None = None, **details: Any) -> Check:
        return cls(name, "passed", reason, details, show)

    @classmethod
    def failed(cls, name: str, reason: str, show: str | None = None, **details: Any) -> Check:
        return cls(name, "failed", reason, details, show)

    @classmethod
    def not_run(cls, name: str, reason: str, **details: Any) -> Check:
        return cls(name, "not_run", reason, details)


@dataclass(frozen=True)
class VerifyContext:
    """What a verifier may look at besides the output: the request text and the loaded packs."""

    text: str
    packs: Mapping[str, Pack]
    skill: str = ""

    def pack(self, name: str) -> Pack | None:
        return self.packs.get(name)

    def pack_root(self, name: str) -> Path | None:
        """The folder of a loaded pack (where its catalog, samples and rule documents are), or None."""
        pack = self.packs.get(name)
        return pack.root if pack is not None else None


Out = TypeVar("Out", bound=BaseModel, contravariant=True)
# Typed over the output model so a generic `Skill[Out]` can declare `tuple[Verifier[Out], ...]`.
Verifier = Callable[[Out, VerifyContext], Check]


@dataclass(frozen=True)
class Verdict:
    """All checks on one answer, folded into the ledger's verify_status."""

    checks: tuple[Check, ...]

    @property
    def status(self) -> CheckStatus | None:
        """failed if any check failed; passed if one passed and none failed; not_run otherwise."""
        if not self.checks:
            return None
        states = {c.status for c in self.checks}
        if "failed" in states:
            return "failed"
        if "passed" in states:
            return "passed"
        return "not_run"

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "failed"]

    def problem(self) -> str:
        return "; ".join(f"{c.name}: {c.reason}" for c in self.failures)

    def detail(self) -> str | None:
        """JSON for requests.verify_detail: each check's name, status, reason and details."""
        if not self.checks:
            return None
        data = [
            {
                "check": c.name,
                "status": c.status,
                "reason": c.reason,
                **({"details": dict(c.details)} if c.details else {}),
            }
            for c in self.checks
        ]
        text = json.dumps(data, default=str, ensure_ascii=False)
        if len(text) > DETAIL_LIMIT:  # keep it valid JSON: drop details, keep the verdicts
            text = json.dumps([{k: v for k, v in d.items() if k != "details"} for d in data])
        return text[:DETAIL_LIMIT]

    def lines(self) -> list[str]:
        """What the user sees: previews, failures (the answer is still delivered, flagged), not-run."""
        out = [c.show for c in self.checks if c.show]
        out += [f"⚠ Check failed ({c.name}): {c.reason}" for c in self.failures]
        out += [f"Check not run ({c.name}): {c.reason}" for c in self.checks if c.status == "not_run"]
        return out


def run_verifiers(
    verifiers: Sequence[Callable[[Any, VerifyContext], Check]], output: BaseModel, context: VerifyContext
) -> Verdict:
    checks: list[Check] = []
    for verifier in verifiers:
        name = getattr(verifier, "__name__", "verifier")
        try:
            check = verifier(output, context)
        except Exception as exc:  # a broken verifier must not cost the user the answer
            log.exception("verifier %s crashed", name)
            check = Check.not_run(name, f"the check crashed: {type(exc).__name__}: {exc}"[:300])
        if not isinstance(check, Check):
            check = Check.not_run(name, f"the check returned {type(check).__name__}, not a Check")
        checks.append(check)
    return Verdict(tuple(checks))
