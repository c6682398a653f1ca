"""The `Skill` declaration and the registry that loads skills.

Built-in skills are the modules of the top-level `skills` package; other installed packages add
skills through the entry-point group `tierwise.skills`; `TIERWISE_SKILL_DIRS` adds folders of
modules. A broken skill is reported with its module and reason and skipped; the others load.

A plugin's folder (the package an entry point names, or a skill folder) may ship `context_packs/`
and `evals/<skill>.jsonl` beside its modules: they are loaded with it, with no extra settings.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pkgutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic

from pydantic import BaseModel
from typing_extensions import TypeVar

if TYPE_CHECKING:
    from bot.core.prompt import PromptParts
    from bot.core.verify import Check, VerifyContext

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "tierwise.skills"


@dataclass(frozen=True)
class FieldScore:
    """How one expected field compared with the model's output."""

    field: str
    expected: Any
    actual: Any
    passed: bool


@dataclass(frozen=True)
class CaseScore:
    """A comparator's verdict on one output against one expectation."""

    passed: bool
    score: float
    fields: tuple[FieldScore, ...] = ()
    detail: str = ""


Comparator = Callable[[dict[str, Any], dict[str, Any]], CaseScore]

# The output model; a free-text skill is a `Skill[BaseModel]` with no output.
Out = TypeVar("Out", bound=BaseModel, default=BaseModel)


@dataclass(frozen=True)
class Skill(Generic[Out]):
    """What a skill is: a declaration, not code paths. Twenty lines and a pack make a skill.

    Typed over its output model: `Skill[EmailLabel]` has `output=EmailLabel`, and its hooks receive
    an `EmailLabel`. Output rules belong in the model (pydantic constraints and validators) where
    they can be: they then reach the model through the JSON schema, not only the parser.

    Optional hooks:
    - `build_prompt(parts) -> parts`: adjust the assembled prompt parts (never the tier or pack).
    - `prepare_input(text) -> text`: normalise what the user sent (raise `InputError` to refuse it).
    - `check_output(obj)`: extra validation of structured output (raise `ValueError` → escalation).
    - `verifiers`: checks `(obj, VerifyContext) -> Check` run on every structured answer (bot.core.verify);
      a failed one escalates once; their outcome is stored on the ledger row as evidence.
    - `postprocess(text, structured) -> text`: last touch to the answer text.
    - `comparator(expected, output) -> CaseScore`: scores golden-set cases and shadow pairs.
    """

    name: str
    description: str
    instructions: str
    command: str | None = None
    tier: str = "small"
    packs: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    input_patterns: tuple[
        str, ...
    ] = ()  # regexes (case-insensitive, multiline) whose match is a strong signal
    detect: Callable[[str], bool] | None = None  # the same, as code (e.g. "this parses as a JSON alert")
    output: type[Out] | None = None
    max_output_tokens: int = 512
    context_budget: int = 1200
    sensitive: bool = False
    channels: tuple[str, ...] = ()
    cite_sources: bool = False
    shortcut: str | None = None  # a Slack message shortcut title, e.g. "Summarize thread"
    uses_thread: bool = False  # the whole thread is the input when the text is empty
    build_prompt: Callable[[PromptParts], PromptParts] | None = None
    prepare_input: Callable[[str], str] | None = None
    check_output: Callable[[Out], None] | None = None
    verifiers: tuple[Callable[[Out, VerifyContext], Check], ...] = ()
    postprocess: Callable[[str, dict[str, Any] | None], str] | None = None
    comparator: Comparator | None = None
    module: str = field(default="", compare=False)
    # The folder of the package that declared the skill (None for built-ins): a plugin ships its
    # own `context_packs/` and `evals/` there, found without any configuration.
    home: Path | None = field(default=None, compare=False)

    @property
    def structured(self) -> bool:
        return self.output is not None

    @property
    def slash(self) -> str:
        return self.command or f"/{self.name}"


class InputError(ValueError):
    """The user's input cannot be used as it is; the message is shown to the user."""


@dataclass(frozen=True)
class LoadProblem:
    module: str
    reason: str

    def __str__(self) -> str:
        return f"{self.module}: {self.reason}"


@dataclass
class Registry:
    """The loaded skills, by name and by slash command."""

    skills: dict[str, Skill]
    problems: list[LoadProblem] = field(default_factory=list)

    def get(self, name: str) -> Skill | None:
        return self.skills.get(name)

    def by_command(self, command: str) -> Skill | None:
        command = command if command.startswith("/") else f"/{command}"
        for skill in self.skills.values():
            if skill.slash == command:
                return skill
        return None

    def names(self) -> list[str]:
        return list(self.skills)

    def __iter__(self) -> Iterator[Skill]:
        return iter(self.skills.values())

    def __len__(self) -> int:
        return len(self.skills)


def _skills_in(obj: Any) -> list[Skill]:
    """A module, a Skill, or a list of Skills (what an entry point may point at)."""
    if isinstance(obj, Skill):
        return [obj]
    if isinstance(obj, list | tuple):
        return [s for s in obj if isinstance(s, Skill)]
    found = [
        value for key, value in vars(obj).items() if isinstance(value, Skill) and not key.startswith("_")
    ]
    return found


Found = tuple[str, Skill, Path | None]  # (module label, declaration, the folder it came from)


def _candidates(
    skill_dirs: Sequence[Path],
) -> Iterable[tuple[str, Callable[[], Any], Callable[[], Path | None]]]:
    """(module label, loader, home) triples: built-ins, then extra folders, then entry points."""
    try:
        import skills as builtin
    except ImportError as exc:  # pragma: no cover - packaging error
        error = exc

        def broken() -> Any:
            raise error

        yield "skills", broken, lambda: None
    else:
        for info in sorted(pkgutil.iter_modules(builtin.__path__), key=lambda i: i.name):
            if info.name.startswith("_"):
                continue
            name = f"skills.{info.name}"
            yield name, partial(importlib.import_module, name), lambda: None
    for folder in skill_dirs:
        for path in sorted(Path(folder).glob("*.py")):
            if path.name.startswith("_"):
                continue
            yield str(path), partial(_import_file, path), partial(_folder_of, path)
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        yield f"{ep.value} (entry point {ep.name})", ep.load, partial(_module_home, ep.module)


def _folder_of(path: Path) -> Path | None:
    return path.resolve().parent


def _module_home(module: str) -> Path | None:
    """The folder of an imported plugin module's top-level package."""
    top = sys.modules.get(module.split(".")[0])
    origin = getattr(top, "__file__", None)
    return Path(origin).resolve().parent if origin else None


def _import_file(path: Path) -> Any:
    mod_name = f"tierwise_skill_{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module


STANDARD_TIERS = ("small", "medium", "large")


def ladder_tier(name: str, tiers: Sequence[str]) -> str | None:
    """A skill's declared tier on this ladder. The standard names map by position onto a custom
    ladder (small → cheapest, medium → middle, large → strongest), so built-in skills work on any."""
    if name in tiers:
        return name
    if name in STANDARD_TIERS and tiers:
        index = {"small": 0, "medium": (len(tiers) - 1) // 2, "large": len(tiers) - 1}[name]
        return tiers[index]
    return None


def validate_skill(skill: Skill, tiers: Sequence[str], packs: Iterable[str]) -> str | None:
    """Why this declaration cannot be used, or None."""
    pack_names = set(packs)
    if not skill.name or not skill.name.replace("-", "").replace("_", "").isalnum():
        return f"invalid skill name {skill.name!r}"
    if ladder_tier(skill.tier, tiers) is None:
        return f"unknown tier {skill.tier!r} (valid: {', '.join(tiers)})"
    missing = [p for p in skill.packs if p not in pack_names]
    if missing:
        return f"unknown pack {', '.join(missing)} (available: {', '.join(sorted(pack_names)) or 'none'})"
    if skill.command is not None and (not skill.command.startswith("/") or " " in skill.command):
        return f"invalid slash command {skill.command!r}"
    if skill.max_output_tokens <= 0 or skill.context_budget < 0:
        return "max_output_tokens must be positive and context_budget not negative"
    return None


def build_registry(
    found: Iterable[tuple[str, Skill] | Found], tiers: Sequence[str], packs: Iterable[str]
) -> Registry:
    """Validate declarations in order; the first of a duplicate name or command wins."""
    pack_names = list(packs)
    registry = Registry(skills={})
    commands: dict[str, str] = {}
    seen: set[int] = set()
    for module, skill, *rest in found:
        home = rest[0] if rest else None
        if id(skill) in seen:  # the same object re-exported by another module
            continue
        seen.add(id(skill))
        reason = validate_skill(skill, tiers, pack_names)
        if reason is None and skill.name in registry.skills:
            reason = f"duplicate skill name {skill.name!r} (first declared in {registry.skills[skill.name].module})"
        if reason is None and skill.slash in commands:
            reason = f"duplicate command {skill.slash} (already used by skill {commands[skill.slash]!r})"
        if reason is not None:
            registry.problems.append(LoadProblem(module, reason))
            log.warning("skill skipped: %s: %s", module, reason)
            continue
        registry.skills[skill.name] = replace(
            skill, module=module, tier=ladder_tier(skill.tier, tiers) or skill.tier, home=home
        )
        commands[skill.slash] = skill.name
    return registry


def discover_skills(skill_dirs: Sequence[Path] = ()) -> tuple[list[Found], list[LoadProblem]]:
    """Import every skill module; a broken one is a problem, not a crash."""
    found: list[Found] = []
    problems: list[LoadProblem] = []
    for label, loader, home in _candidates(skill_dirs):
        try:
            obj = loader()
        except Exception as exc:  # a broken plugin must not take the bot down
            problems.append(LoadProblem(label, f"import failed: {type(exc).__name__}: {exc}"))
            log.warning("skill module skipped: %s: import failed: %s", label, exc)
            continue
        skills = _skills_in(obj)
        if not skills:
            problems.append(LoadProblem(label, "declares no Skill"))
            continue
        folder = home()
        found.extend((label, s, folder) for s in skills)
    return found, problems


def plugin_pack_dirs(found: Iterable[Found]) -> list[Path]:
    """`context_packs/` folders shipped beside plugin skills, in discovery order."""
    dirs: list[Path] = []
    for _, _, home in found:
        candidate = home / "context_packs" if home else None
        if candidate is not None and candidate.is_dir() and candidate not in dirs:
            dirs.append(candidate)
    return dirs


def load_registry(
    tiers: Sequence[str],
    packs: Iterable[str],
    skill_dirs: Sequence[Path] = (),
    discovered: tuple[list[Found], list[LoadProblem]] | None = None,
) -> Registry:
    found, problems = discovered if discovered is not None else discover_skills(skill_dirs)
    registry = build_registry(found, tiers, packs)
    registry.problems[:0] = problems
    return registry
