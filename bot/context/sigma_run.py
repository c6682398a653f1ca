"""Run a Sigma rule against a pack's sample events, locally, with pySigma's SQLite backend.

The threat-hunting pack ships `samples/*.json`: per log source, the Sigma `logsource`, the field
catalog (the detection fields our pipeline knows) and a few benign and malicious events with where
they come from and which ATT&CK techniques the malicious ones show. A rule is compiled to SQL,
the events are loaded into an in-memory SQLite table, and the query says which events match.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLES_DIR = "samples"
RAW = "_raw"  # every event's text, for keyword (field-less) detections
SAMPLE_ID = "_sample_id"


class SampleError(ValueError):
    """A sample file cannot be used; the message names the pack and file."""


class NotRunnable(ValueError):
    """The rule cannot be executed here (the backend cannot compile it, SQLite refuses it)."""


@dataclass(frozen=True)
class SampleEvent:
    id: str
    label: str  # malicious | benign
    techniques: tuple[str, ...]
    source: str
    note: str
    event: Mapping[str, Any]

    @property
    def malicious(self) -> bool:
        return self.label == "malicious"


@dataclass(frozen=True)
class SampleSet:
    name: str
    file: str  # "<pack>/samples/<file>"
    logsource: Mapping[str, str]
    fields: tuple[str, ...]  # may hold patterns such as "requestParameters.*"
    events: tuple[SampleEvent, ...]

    def knows(self, field: str) -> bool:
        return any(fnmatch.fnmatchcase(field, pattern) for pattern in self.fields)

    @property
    def label(self) -> str:
        return "/".join(self.logsource[k] for k in ("product", "category", "service") if k in self.logsource)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested JSON → dotted keys (`userIdentity.arn`), the way Sigma names CloudTrail/Okta fields."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _read_set(path: Path, label: str) -> SampleSet:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        logsource = {str(k): str(v) for k, v in data["logsource"].items()}
        fields = tuple(str(f) for f in data["fields"])
        events = tuple(
            SampleEvent(
                id=str(e["id"]),
                label=str(e["label"]),
                techniques=tuple(str(t).upper() for t in e.get("techniques", ())),
                source=str(e.get("source", "")),
                note=str(e.get("note", "")),
                event=_flatten(e["event"]),
            )
            for e in data["events"]
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SampleError(f"sample events {label} cannot be read: {exc}") from exc
    except (KeyError, TypeError, AttributeError) as exc:
        raise SampleError(f"sample events {label} are malformed ({type(exc).__name__}: {exc})") from exc
    if not logsource or not fields:
        raise SampleError(f"sample events {label} need a logsource and a field catalog")
    bad = [e.id for e in events if e.label not in ("malicious", "benign")]
    if bad:
        raise SampleError(f"sample events {label}: label must be malicious or benign ({', '.join(bad)})")
    return SampleSet(path.stem, label, logsource, fields, events)


_cache: dict[tuple[str, tuple[tuple[str, int, float], ...]], tuple[SampleSet, ...]] = {}
_lock = threading.Lock()


def load_samples(pack_root: Path, pack_name: str) -> tuple[SampleSet, ...]:
    """Every sample set of a pack, cached until a file changes; SampleError names a broken file."""
    folder = pack_root / SAMPLES_DIR
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    stamp = tuple((f.name, f.stat().st_size, f.stat().st_mtime) for f in files)
    key = (str(pack_root.resolve()), stamp)
    with _lock:
        if key not in _cache:
            _cache[key] = tuple(_read_set(f, f"{pack_name}/{SAMPLES_DIR}/{f.name}") for f in files)
        return _cache[key]


def _norm(source: Mapping[str, str]) -> dict[str, str]:
    return {k: str(v).lower() for k, v in source.items() if k in ("product", "category", "service") and v}


def sample_set_for(logsource: Mapping[str, str], sets: Iterable[SampleSet]) -> SampleSet | None:
    """The set whose logsource is exactly the rule's (product/category/service, case-insensitive)."""
    wanted = _norm(logsource)
    for sample_set in sets:
        if _norm(sample_set.logsource) == wanted:
            return sample_set
    return None


@dataclass(frozen=True)
class Execution:
    matched: frozenset[str]  # sample event ids the rule matches
    queries: tuple[str, ...]


def _sql_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):  # what Sigma rules compare against; the backend accepts 1/0 too
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return value


def _regexp(pattern: str, value: Any) -> bool:
    return value is not None and re.search(pattern, str(value)) is not None


def compile_rule(rule_text: str) -> tuple[str, ...]:
    """SQL for a rule; NotRunnable with the backend's reason when it cannot be compiled."""
    from sigma.backends.sqlite import sqliteBackend
    from sigma.collection import SigmaCollection
    from sigma.exceptions import SigmaError

    try:
        collection = SigmaCollection.from_yaml(rule_text)
        queries = sqliteBackend(fulltext_field=RAW).convert(collection)
    except SigmaError as exc:
        raise NotRunnable(f"the SQLite backend cannot compile the rule: {exc}") from exc
    except Exception as exc:  # the backend has its own exception types (ValueError, NotImplementedError)
        raise NotRunnable(f"the SQLite backend cannot compile the rule: {type(exc).__name__}: {exc}") from exc
    sql = tuple(q for q in queries if isinstance(q, str))
    if not sql:
        raise NotRunnable("the SQLite backend produced no query for the rule")
    return sql


def execute(rule_text: str, sample_set: SampleSet, extra_fields: Iterable[str] = ()) -> Execution:
    """Which of the set's events the rule matches. `extra_fields`: the rule's fields, so one that no
    sample event carries exists as a NULL column (SQLite refuses unknown columns)."""
    queries = compile_rule(rule_text)
    columns: list[str] = []
    seen: set[str] = set()
    for name in [*(k for e in sample_set.events for k in e.event), *extra_fields]:
        if name.lower() not in seen and name.lower() not in (RAW, SAMPLE_ID):
            seen.add(name.lower())
            columns.append(name)
    db = sqlite3.connect(":memory:")
    try:
        db.create_function("regexp", 2, _regexp, deterministic=True)
        quoted = ", ".join(f'"{c}" TEXT COLLATE NOCASE' for c in [SAMPLE_ID, RAW, *columns])
        db.execute(f"CREATE TABLE logs ({quoted})")
        placeholders = ", ".join("?" for _ in range(len(columns) + 2))
        names = ", ".join(f'"{c}"' for c in [SAMPLE_ID, RAW, *columns])
        lowered = [c.lower() for c in columns]
        for sample in sample_set.events:
            by_lower = {k.lower(): v for k, v in sample.event.items()}
            raw = json.dumps(dict(sample.event), ensure_ascii=False)
            values = [sample.id, raw, *(_sql_value(by_lower.get(c)) for c in lowered)]
            db.execute(f"INSERT INTO logs ({names}) VALUES ({placeholders})", values)
        matched: set[str] = set()
        for query in queries:
            try:
                rows = db.execute(f"SELECT {SAMPLE_ID} FROM ({query})").fetchall()
            except sqlite3.Error as exc:
                raise NotRunnable(f"SQLite cannot run the compiled rule: {exc}") from exc
            matched.update(r[0] for r in rows)
    finally:
        db.close()
    return Execution(frozenset(matched), queries)
