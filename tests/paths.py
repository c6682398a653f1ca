"""Where things are, for tests in any of the groups (unit, integration, slack, cli, embedded)."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent  # fixtures/, data/, plugins/, skill_sources/
ROOT = TESTS.parent  # the repository: evals/, context_packs/, skills/
