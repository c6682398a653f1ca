"""A helpdesk skill on the cli-docs pack, for the CLI tests (copied into each test's skills folder)."""

from bot.core.skills import Skill

helpdesk = Skill(
    name="helpdesk",
    command="/helpdesk",
    description="Answer blorptastic helpdesk questions",
    instructions="You answer helpdesk questions.",
    packs=("cli-docs",),
    examples=("How do I reset my blorptastic token?",),
)
