"""Start-up check of the data files the skills' verifiers read from packs: the ATT&CK catalog
(`attack/*.json`), hunt sample events (`samples/*.json`) and the rule documents. A problem is reported
with the pack and file, before any answer needs it; the checks themselves then say "not run"."""

from __future__ import annotations

from collections.abc import Mapping

from bot.context.attack import CATALOG_DIR, CatalogError, load_catalog
from bot.context.pack_rules import RuleError, severity_matrix, taxonomy
from bot.context.packs import Pack
from bot.context.sigma_run import SAMPLES_DIR, SampleError, load_samples


def pack_data_problems(packs: Mapping[str, Pack]) -> list[str]:
    problems: list[str] = []
    for pack in packs.values():
        if (pack.root / CATALOG_DIR).exists() or pack.name in ("security-runbooks", "threat-hunting"):
            try:
                load_catalog(pack.root, pack.name)
            except CatalogError as exc:
                problems.append(str(exc))
        if (pack.root / SAMPLES_DIR).is_dir():
            try:
                load_samples(pack.root, pack.name)
            except SampleError as exc:
                problems.append(str(exc))
        for doc, parse in (("severity-matrix.md", severity_matrix), ("taxonomy.md", taxonomy)):
            if (pack.root / doc).is_file():
                try:
                    parse(pack.root, pack.name)
                except RuleError as exc:
                    problems.append(str(exc))
    return problems
