"""Sigma rule checks with pySigma: a rule that does not parse is invalid output."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ParsedRule:
    title: str
    logsource: dict[str, str]
    fields: frozenset[str]
    level: str | None
    # e.g. "attack.t1059.001", as written in the rule; not part of equality (what the rule detects)
    tags: tuple[str, ...] = field(default=(), compare=False)


def _fields(detection: Any) -> set[str]:
    found: set[str] = set()
    for item in detection.detection_items:
        if hasattr(item, "detection_items"):
            found |= _fields(item)
        elif getattr(item, "field", None):
            found.add(item.field)
    return found


def parse_rule(text: str) -> ParsedRule:
    """Parse a Sigma YAML rule, including its condition; raises ValueError with pySigma's reason."""
    import yaml
    from sigma.exceptions import SigmaError
    from sigma.rule import SigmaRule

    try:
        rule = SigmaRule.from_yaml(text)
        for condition in rule.detection.parsed_condition:
            condition.parse()  # conditions are parsed lazily; a typo only surfaces here
    except (SigmaError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"Sigma rule does not parse: {type(exc).__name__}: {exc}") from exc
    source = rule.logsource
    logsource = {
        key: value
        for key, value in (
            ("product", source.product),
            ("category", source.category),
            ("service", source.service),
        )
        if value
    }
    fields: set[str] = set()
    for detection in rule.detection.detections.values():
        fields |= _fields(detection)
    level = rule.level.name.lower() if rule.level else None
    tags = tuple(str(tag) for tag in rule.tags)
    return ParsedRule(rule.title, logsource, frozenset(fields), level, tags)
