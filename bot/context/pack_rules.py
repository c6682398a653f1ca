"""Decision rules read from the packs' own documents, for the skills' consistency checks.

The rules live where people maintain them (markdown tables and numbered rules in the packs), so the
checks follow the pack when it changes. A document that no longer has the expected shape raises
`RuleError` naming the pack and file; the check then reports "not run" with that reason.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

SEVERITIES = ("informational", "low", "medium", "high", "critical")  # ascending


class RuleError(ValueError):
    """A pack document cannot be read as rules; the message names the pack and file."""


def _read(root: Path, pack: str, rel: str) -> str:
    try:
        return (root / rel).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"pack {pack}: {rel} cannot be read ({exc})") from exc


def _section(text: str, heading: str) -> str:
    """The body of a `## heading` section (up to the next `## `)."""
    match = re.search(rf"^##\s+{re.escape(heading)}\s*$(.*?)(?=^##\s|\Z)", text, re.M | re.S | re.I)
    return match.group(1) if match else ""


def _table(section: str) -> list[list[str]]:
    rows = []
    for line in section.splitlines():
        line = line.strip()
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        rows.append([cell.strip().strip("`").strip() for cell in line.strip("|").split("|")])
    return rows


# Severity matrix (security-runbooks/severity-matrix.md) ----------------------------------------


@dataclass(frozen=True)
class SeverityMatrix:
    source: str
    matrix: dict[tuple[int, str], str]  # (asset tier 0/1/2, evidence) → severity
    hard_rules: dict[int, frozenset[str]]  # rule number → severities it allows
    hard_rule_fp: dict[int, str]  # rule number → the false-positive likelihood it sets
    runbooks: frozenset[str]

    def expected(self, tier: int, evidence: str, bump: bool) -> str:
        """The matrix severity, raised one level by the blast-radius bump (which never makes critical)."""
        base = self.matrix[(tier, evidence)]
        if not bump or base == "critical":
            return base
        raised = SEVERITIES[min(SEVERITIES.index(base) + 1, len(SEVERITIES) - 1)]
        return "high" if raised == "critical" else raised


def parse_severity_matrix(text: str, source: str) -> SeverityMatrix:
    rows = _table(_section(text, "Matrix"))
    if len(rows) < 2:
        raise RuleError(f"{source}: no table under '## Matrix'")
    header = [h.lower() for h in rows[0]]
    evidence_cols = {i: h for i, h in enumerate(header) if h in ("confirmed", "suspected", "blocked")}
    if len(evidence_cols) != 3:
        raise RuleError(f"{source}: the matrix needs Confirmed, Suspected and Blocked columns")
    matrix: dict[tuple[int, str], str] = {}
    for row in rows[1:]:
        tier = re.search(r"tier\s*(\d)", row[0], re.I)
        if tier is None:
            continue
        for i, evidence in evidence_cols.items():
            value = row[i].lower() if i < len(row) else ""
            if value not in SEVERITIES:
                raise RuleError(f"{source}: matrix cell {row[0]} × {evidence} is {value!r}, not a severity")
            matrix[(int(tier.group(1)), evidence)] = value
    if len(matrix) != 9:
        raise RuleError(
            f"{source}: the matrix should have 3 tiers × 3 evidence states, found {len(matrix)} cells"
        )

    rule_lines = {
        int(m.group(1)): m.group(2)
        for m in re.finditer(r"^(\d+)\.\s+(.*)$", _section(text, "Hard rules (override the matrix)"), re.M)
    }
    if not rule_lines:
        raise RuleError(f"{source}: no numbered rules under '## Hard rules (override the matrix)'")
    words = "|".join(SEVERITIES)

    def named(line: str) -> set[str]:
        return {w.lower() for w in re.findall(rf"\b({words})\b", line, re.I)}

    hard: dict[int, frozenset[str]] = {}
    fp: dict[int, str] = {}
    for number, line in rule_lines.items():
        # "FP likelihood high" is not a severity; a rule that defers to another ("= rule 5") allows its.
        plain = re.sub(r"FP likelihood \w+", "", line, flags=re.I)
        allowed = named(plain)
        for ref in re.findall(r"\brule (\d+)", plain, re.I):
            allowed |= named(re.sub(r"FP likelihood \w+", "", rule_lines.get(int(ref), ""), flags=re.I))
        hard[number] = frozenset(allowed)
        likelihood = re.search(r"FP likelihood (\w+)", line, re.I)
        if likelihood:
            fp[number] = likelihood.group(1).lower()
    runbooks = frozenset(re.findall(r"^-\s*(RB-[A-Z-]+)\b", _section(text, "Runbook ids"), re.M))
    if not runbooks:
        raise RuleError(f"{source}: no runbook ids under '## Runbook ids'")
    return SeverityMatrix(source, matrix, hard, fp, runbooks)


# Email taxonomy (email-taxonomy/taxonomy.md) ----------------------------------------------------


@dataclass(frozen=True)
class Taxonomy:
    source: str
    teams: dict[str, str]  # category → default team
    exceptions: frozenset[tuple[str, str]]  # (category, team) pairs allowed besides the default
    never: frozenset[tuple[str, str]]  # (category, priority) that must not occur
    always: dict[str, str]  # category → the only priority it may have

    def teams_for(self, category: str) -> set[str]:
        allowed = {self.teams[category]} if category in self.teams else set()
        return allowed | {team for cat, team in self.exceptions if cat == category}


def parse_taxonomy(text: str, source: str) -> Taxonomy:
    section = _section(text, "Categories and routing team")
    rows = _table(section)
    if len(rows) < 2 or [h.lower() for h in rows[0]][:1] != ["category"] or rows[0][-1].lower() != "team":
        raise RuleError(f"{source}: no category | … | team table under '## Categories and routing team'")
    teams = {row[0]: row[-1] for row in rows[1:] if len(row) >= 2}
    exceptions = frozenset(re.findall(r"`([\w-]+)` routed to `([\w-]+)`", section))
    priority = _section(text, "Priority")
    never = frozenset(re.findall(r"`([\w-]+)` is never `([\w-]+)`", priority))
    always: dict[str, str] = {}
    for line in priority.splitlines():
        level = re.match(r"^-\s*`([\w-]+)`", line.strip())
        if level:
            for category in re.findall(r"every `([\w-]+)` email", line):
                always[category] = level.group(1)
    return Taxonomy(source, teams, exceptions, never, always)


# Cached loaders ---------------------------------------------------------------------------------

_cache: dict[tuple[str, str, float, int], object] = {}
_lock = threading.Lock()
Parsed = TypeVar("Parsed")


def _cached(root: Path, pack: str, rel: str, parse: Callable[[str, str], Parsed]) -> Parsed:
    path = root / rel
    try:
        stat = path.stat()
    except OSError as exc:
        raise RuleError(f"pack {pack}: {rel} is missing") from exc
    key = (str(path.resolve()), parse.__name__, stat.st_mtime, stat.st_size)
    with _lock:
        if key not in _cache:
            _cache[key] = parse(_read(root, pack, rel), f"pack {pack}: {rel}")
        return cast(Parsed, _cache[key])  # the key names the parser: this is what `parse` returned


def severity_matrix(root: Path, pack: str = "security-runbooks") -> SeverityMatrix:
    return _cached(root, pack, "severity-matrix.md", parse_severity_matrix)


def taxonomy(root: Path, pack: str = "email-taxonomy") -> Taxonomy:
    return _cached(root, pack, "taxonomy.md", parse_taxonomy)
