"""The offline MITRE ATT&CK Enterprise catalog that the security packs ship, and id checks against it.

A pack keeps its catalog in `attack/*.json`. Two formats are read:
- the shipped one (ATT&CK ids and names as tables: `mitre_attack_version`, `mitre_attack_techniques`, ...;
  optional `mitre_attack_revoked`: revoked id → the id that replaced it, or null);
- MITRE's own STIX bundle (`enterprise-attack.json` from the attack-stix-data repository), so a newer
  release can be dropped in as it is downloaded. Revoked and deprecated techniques are read from it.
The newest version in the folder wins, and checks say which version they used.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CATALOG_DIR = "attack"
TECHNIQUE_ID = re.compile(r"^T\d{4}(\.\d{3})?$")


class CatalogError(ValueError):
    """The catalog is missing or unreadable; the message names the pack and the file."""


@dataclass(frozen=True)
class Catalog:
    version: str
    source: str  # "<pack>/attack/<file>"
    techniques: dict[str, str]  # id → name (current techniques and sub-techniques only)
    tactics: frozenset[str] = frozenset()  # short names, e.g. "credential-access"
    groups: frozenset[str] = frozenset()  # G0001 …
    software: frozenset[str] = frozenset()  # S0001 …
    revoked: dict[str, str | None] = field(default_factory=dict)  # id → replacement (None: deprecated)

    @property
    def label(self) -> str:
        return f"ATT&CK v{self.version} ({self.source})"

    def problem(self, technique: str) -> str | None:
        """Why this id is not a current technique, or None when it is."""
        tid = technique.strip().upper()
        if not TECHNIQUE_ID.match(tid):
            return f"{technique} is not an ATT&CK technique id (T1234 or T1234.001)"
        if tid in self.techniques:
            return None
        if tid in self.revoked:
            successor = self.revoked[tid]
            return f"{tid} is revoked in ATT&CK v{self.version}" + (
                f" (use {successor})" if successor else ""
            )
        return f"{tid} is not in ATT&CK v{self.version}"

    def name(self, technique: str) -> str | None:
        return self.techniques.get(technique.strip().upper())


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)) or (0,)


def _from_tables(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    version = str(data["mitre_attack_version"])
    techniques = data["mitre_attack_techniques"]
    if not isinstance(techniques, dict) or not techniques:
        raise ValueError("mitre_attack_techniques is empty or not a table")
    return version, {
        "techniques": {str(k).upper(): str(v) for k, v in techniques.items()},
        "tactics": frozenset(str(v) for v in (data.get("mitre_attack_tactics") or {}).values()),
        "groups": frozenset(data.get("mitre_attack_intrusion_sets") or {}),
        "software": frozenset(data.get("mitre_attack_software") or {}),
        "revoked": {str(k).upper(): v for k, v in (data.get("mitre_attack_revoked") or {}).items()},
    }


def _attack_id(obj: dict[str, Any]) -> str | None:
    for ref in obj.get("external_references") or ():
        if ref.get("source_name") == "mitre-attack" and ref.get("external_id"):
            return str(ref["external_id"]).upper()
    return None


def _from_stix(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    objects = data["objects"]
    by_ref: dict[str, str] = {}
    version = ""
    techniques: dict[str, str] = {}
    revoked: dict[str, str | None] = {}
    tactics: set[str] = set()
    groups: set[str] = set()
    software: set[str] = set()
    for obj in objects:
        kind = obj.get("type")
        if kind == "x-mitre-collection":
            version = str(obj.get("x_mitre_version") or version)
            continue
        ext = _attack_id(obj)
        if ext is None:
            continue
        by_ref[obj["id"]] = ext
        gone = obj.get("revoked") or obj.get("x_mitre_deprecated")
        if kind == "attack-pattern":
            if gone:
                revoked.setdefault(ext, None)
            else:
                techniques[ext] = str(obj.get("name", ""))
        elif kind == "x-mitre-tactic" and not gone:
            tactics.add(str(obj.get("x_mitre_shortname", "")))
        elif kind == "intrusion-set" and not gone:
            groups.add(ext)
        elif kind in ("malware", "tool") and not gone:
            software.add(ext)
    for obj in objects:  # "revoked-by" names the technique that replaced a revoked one
        if obj.get("type") == "relationship" and obj.get("relationship_type") == "revoked-by":
            old, new = by_ref.get(obj.get("source_ref", "")), by_ref.get(obj.get("target_ref", ""))
            if old in revoked:
                revoked[old] = new
    if not techniques:
        raise ValueError("the STIX bundle holds no attack-pattern with a mitre-attack id")
    if not version:
        raise ValueError("the STIX bundle has no x-mitre-collection with x_mitre_version")
    return version, {
        "techniques": techniques,
        "tactics": frozenset(tactics),
        "groups": frozenset(groups),
        "software": frozenset(software),
        "revoked": revoked,
    }


def read_catalog(path: Path, label: str) -> Catalog:
    """One catalog file; CatalogError naming `label` (pack/attack/file) when it cannot be used."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CatalogError(f"ATT&CK catalog {label} is missing") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogError(f"ATT&CK catalog {label} is not valid JSON: {exc}") from exc
    try:
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("type") == "bundle":
            version, parts = _from_stix(data)
        else:
            version, parts = _from_tables(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CatalogError(f"ATT&CK catalog {label} is not a catalog ({type(exc).__name__}: {exc})") from exc
    return Catalog(version=version, source=label, **parts)


def load_catalog(pack_root: Path, pack_name: str) -> Catalog:
    """The newest catalog in `<pack>/attack/`; CatalogError naming the pack and file otherwise."""
    folder = pack_root / CATALOG_DIR
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise CatalogError(f"pack {pack_name}: no ATT&CK catalog in {CATALOG_DIR}/ (expected a *.json file)")
    catalogs = [read_catalog(f, f"{pack_name}/{CATALOG_DIR}/{f.name}") for f in files]
    return max(catalogs, key=lambda c: _version_key(c.version))


_cache: dict[tuple[str, tuple[tuple[str, int, float], ...]], Catalog] = {}
_cache_lock = threading.Lock()


def catalog_for(pack_root: Path, pack_name: str) -> Catalog:
    """Cached by the folder's file names, sizes and times: a catalog dropped in is picked up."""
    folder = pack_root / CATALOG_DIR
    stamp = (
        tuple((f.name, f.stat().st_size, f.stat().st_mtime) for f in sorted(folder.glob("*.json")))
        if folder.is_dir()
        else ()
    )
    key = (str(pack_root.resolve()), stamp)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = load_catalog(pack_root, pack_name)
        return _cache[key]


def sigma_tag_problems(tags: list[str], catalog: Catalog) -> list[str]:
    """Unknown ATT&CK tags on a Sigma rule (`attack.t1059.001`, `attack.execution`, `attack.g0016`)."""
    problems: list[str] = []
    for tag in tags:
        namespace, _, name = tag.partition(".")
        if namespace.lower() != "attack" or not name:
            continue
        lowered = name.lower()
        if re.fullmatch(r"t\d+(\.\d+)?", lowered):
            why = catalog.problem(lowered.upper())
            if why:
                problems.append(f"tag {tag}: {why}")
        elif re.fullmatch(r"g\d{4}", lowered):
            if catalog.groups and lowered.upper() not in catalog.groups:
                problems.append(f"tag {tag}: no group {lowered.upper()} in ATT&CK v{catalog.version}")
        elif re.fullmatch(r"s\d{4}", lowered):
            if catalog.software and lowered.upper() not in catalog.software:
                problems.append(f"tag {tag}: no software {lowered.upper()} in ATT&CK v{catalog.version}")
        elif catalog.tactics and lowered.replace("_", "-") not in catalog.tactics:
            problems.append(f"tag {tag}: not an ATT&CK tactic, technique, group or software id")
    return problems
