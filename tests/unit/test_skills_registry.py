"""The skills registry: built-ins, folders of skill modules, entry points, and broken skills that are
reported with their module and reason and skipped while the others load."""

from __future__ import annotations

import logging
import re
import shutil
import sys
from pathlib import Path

import pytest

from bot.context.packs import builtin_packs_dir, load_packs
from bot.core.skills import ENTRY_POINT_GROUP, Skill, build_registry, load_registry, validate_skill
from tests.paths import TESTS

SKILL_SOURCES = TESTS / "skill_sources"

TIERS = ["small", "medium", "large"]


@pytest.fixture(scope="module")
def builtin_packs() -> dict:
    packs, _ = load_packs([builtin_packs_dir()])
    return packs


def skill_src(name: str, **fields: str) -> str:
    extra = "".join(f"    {k}={v},\n" for k, v in fields.items())
    var = "skill_" + re.sub(r"\W", "_", name)
    return (
        "from bot.core.skills import Skill\n\n"
        f"{var} = Skill(\n"
        f'    name="{name}",\n'
        f'    description="test skill {name}",\n'
        '    instructions="Do the thing.",\n'
        f"{extra})\n"
    )


def test_builtin_skills_load(builtin_packs) -> None:
    registry = load_registry(TIERS, builtin_packs)
    ask = registry.get("ask")
    assert ask is not None
    assert ask.module == "skills.ask"
    assert ask.slash == "/ask"
    assert "company-handbook" in ask.packs
    assert registry.by_command("/ask") is ask
    assert registry.by_command("ask") is ask
    assert registry.by_command("/nope") is None
    assert "ask" in registry.names()
    assert len(registry) == len(registry.names()) == len(list(registry))
    # Every built-in is valid against the built-in packs (none reported).
    assert not [p for p in registry.problems if p.module == "skills.ask"]


BROKEN = {
    "a_good.py": skill_src("good-one"),
    "b_import_error.py": "import tierwise_module_that_does_not_exist\n",
    "c_syntax_error.py": "from bot.core.skills import Skill\n\ndef broken(:\n",
    "d_raises.py": "raise RuntimeError('boom at import')\n",
    "e_dup_name.py": skill_src("good-one", command='"/other-cmd"'),
    "f_dup_command.py": skill_src("other-one", command='"/good-one"'),
    "g_unknown_tier.py": skill_src("tiered", tier='"gigantic"'),
    "h_unknown_pack.py": skill_src("packed", packs='("no-such-pack",)'),
    "i_no_skill.py": "VALUE = 1\n",
    "j_bad_command.py": skill_src("badcmd", command='"no-slash"'),
    "k_bad_name.py": skill_src("bad name!"),
    "l_bad_budget.py": skill_src("budget", max_output_tokens="0"),
    "z_good.py": skill_src("zed-one", packs='("company-handbook",)', tier='"large"'),
    "_private.py": skill_src("private-one"),
}

EXPECTED_PROBLEMS = {
    "b_import_error.py": "import failed: ModuleNotFoundError",
    "c_syntax_error.py": "import failed: SyntaxError",
    "d_raises.py": "import failed: RuntimeError: boom at import",
    "e_dup_name.py": "duplicate skill name 'good-one'",
    "f_dup_command.py": "duplicate command /good-one (already used by skill 'good-one')",
    "g_unknown_tier.py": "unknown tier 'gigantic' (valid: small, medium, large)",
    "h_unknown_pack.py": "unknown pack no-such-pack",
    "i_no_skill.py": "declares no Skill",
    "j_bad_command.py": "invalid slash command 'no-slash'",
    "k_bad_name.py": "invalid skill name 'bad name!'",
    "l_bad_budget.py": "max_output_tokens must be positive",
}


@pytest.fixture
def broken_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "skills"
    folder.mkdir()
    for name, text in BROKEN.items():
        (folder / name).write_text(text)
    return folder


def test_broken_skills_are_reported_and_skipped(broken_dir: Path, builtin_packs, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.core.skills"):
        registry = load_registry(TIERS, builtin_packs, [broken_dir])
    mine = {Path(p.module).name: p.reason for p in registry.problems if p.module.startswith(str(broken_dir))}
    assert set(mine) == set(EXPECTED_PROBLEMS)
    for module, reason in EXPECTED_PROBLEMS.items():
        assert reason in mine[module], (module, mine[module])
    # The duplicate says where the first one came from.
    assert str(broken_dir / "a_good.py") in mine["e_dup_name.py"]
    # Broken modules are logged too, with their module (a module without skills is only listed).
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for module in EXPECTED_PROBLEMS.keys() - {"i_no_skill.py"}:
        assert str(broken_dir / module) in logged
    # The good ones load, from their files, and nothing broken slipped in.
    assert registry.get("good-one").module == str(broken_dir / "a_good.py")
    assert registry.get("good-one").command is None and registry.get("good-one").slash == "/good-one"
    assert registry.get("zed-one").module == str(broken_dir / "z_good.py")
    assert registry.get("ask") is not None
    for name in ("other-one", "tiered", "packed", "badcmd", "budget", "private-one"):
        assert registry.get(name) is None
    assert str(registry.problems[0]).count(": ") >= 1


def test_skill_named_like_a_builtin_is_a_duplicate(tmp_path: Path, builtin_packs) -> None:
    (tmp_path / "ask_again.py").write_text(skill_src("ask", command='"/ask-again"'))
    registry = load_registry(TIERS, builtin_packs, [tmp_path])
    assert registry.get("ask").module == "skills.ask"
    [problem] = [p for p in registry.problems if p.module == str(tmp_path / "ask_again.py")]
    assert problem.reason == "duplicate skill name 'ask' (first declared in skills.ask)"


def test_engine_reports_broken_skills_and_serves_the_rest(make_engine, broken_dir: Path, script) -> None:
    from bot.core.types import Request

    engine = make_engine(skill_dirs=[broken_dir])
    assert {"good-one", "zed-one", "ask"} <= set(engine.registry.names())
    assert sum(1 for p in engine.registry.problems if p.module.startswith(str(broken_dir))) == len(
        EXPECTED_PROBLEMS
    )
    script.on("large", "zed answer")
    reply = engine.handle(Request(text="hi", skill="zed-one"))
    assert reply.ok and reply.text == "zed answer" and reply.tier == "large"


def test_one_module_may_declare_several_skills(tmp_path: Path) -> None:
    shutil.copy(SKILL_SOURCES / "multi" / "multi.py", tmp_path)
    registry = load_registry(TIERS, {}, [tmp_path])
    mine = [s.name for s in registry if s.module == str(tmp_path / "multi.py")]
    assert mine == ["one", "two"]  # re-exported objects are not duplicates; private ones are skipped
    assert registry.by_command("/second").name == "two"


def test_build_registry_first_declaration_wins() -> None:
    a = Skill(name="x", description="d", instructions="i")
    b = Skill(name="x", description="other", instructions="i", command="/x2")
    registry = build_registry([("mod_a", a), ("mod_b", b), ("mod_a_again", a)], TIERS, [])
    assert registry.get("x").description == "d"
    assert [(p.module, p.reason.split(" (")[0]) for p in registry.problems] == [
        ("mod_b", "duplicate skill name 'x'")
    ]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"name": ""}, "invalid skill name"),
        ({"name": "has space"}, "invalid skill name"),
        ({"tier": "xl"}, "unknown tier 'xl'"),
        ({"packs": ("a", "zz")}, "unknown pack zz (available: a, b)"),
        ({"command": "/two words"}, "invalid slash command"),
        ({"context_budget": -1}, "context_budget not negative"),
    ],
)
def test_validate_skill(fields: dict, reason: str) -> None:
    base = {"name": "ok-name_1", "description": "d", "instructions": "i"}
    assert validate_skill(Skill(**base), TIERS, ["a", "b"]) is None
    problem = validate_skill(Skill(**{**base, **fields}), TIERS, ["a", "b"])
    assert problem is not None and reason in problem


# ---------------------------------------------------------------------------------------------
# Entry points


def make_distribution(root: Path, package: str, entry_points: str) -> None:
    pkg = root / package
    pkg.mkdir(parents=True)
    shutil.copy(SKILL_SOURCES / "plugin" / "__init__.py", pkg)
    info = root / f"{package}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_entry_point_skills_are_discovered(tmp_path: Path, monkeypatch, builtin_packs) -> None:
    package = "tierwise_plugin_" + tmp_path.name.replace("-", "_")
    make_distribution(
        tmp_path / "site",
        package,
        f"[{ENTRY_POINT_GROUP}]\n"
        f"plugin = {package}:plugin_skill\n"
        f"plugin_list = {package}:more\n"
        "missing = tierwise_no_such_plugin_pkg:thing\n"
        f"[console_scripts]\nnot-a-skill = {package}:plugin_skill\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, package, raising=False)
    try:
        registry = load_registry(TIERS, builtin_packs)
    finally:
        sys.modules.pop(package, None)
    plugin = registry.get("plugin-skill")
    assert plugin is not None
    assert plugin.module == f"{package}:plugin_skill (entry point plugin)"
    assert registry.by_command("/plugin") is plugin
    assert registry.get("plugin-two").module == f"{package}:more (entry point plugin_list)"
    assert registry.get("ask") is not None
    [problem] = [p for p in registry.problems if "entry point missing" in p.module]
    assert problem.module == "tierwise_no_such_plugin_pkg:thing (entry point missing)"
    assert problem.reason.startswith("import failed: ModuleNotFoundError")


@pytest.mark.parametrize(
    ("ladder", "expected"),
    [
        (["haiku", "sonnet", "opus"], {"small": "haiku", "medium": "sonnet", "large": "opus"}),
        (["cheap", "dear"], {"small": "cheap", "medium": "cheap", "large": "dear"}),
        (["only"], {"small": "only", "medium": "only", "large": "only"}),
        (["a", "b", "c", "d", "e"], {"small": "a", "medium": "c", "large": "e"}),
    ],
)
def test_standard_tier_names_map_onto_a_custom_ladder(
    tmp_path: Path, ladder: list[str], expected: dict
) -> None:
    for declared in ("small", "medium", "large"):
        (tmp_path / f"on_{declared}.py").write_text(skill_src(f"on-{declared}", tier=f'"{declared}"'))
    (tmp_path / "on_own.py").write_text(skill_src("on-own", tier=f'"{ladder[-1]}"'))
    (tmp_path / "on_other.py").write_text(skill_src("on-other", tier='"gigantic"'))
    registry = load_registry(ladder, {}, [tmp_path])
    for declared, tier in expected.items():
        assert registry.get(f"on-{declared}").tier == tier
    assert registry.get("on-own").tier == ladder[-1]
    assert registry.get("on-other") is None
    [problem] = [p for p in registry.problems if p.module == str(tmp_path / "on_other.py")]
    assert problem.reason == f"unknown tier 'gigantic' (valid: {', '.join(ladder)})"
