"""A skill that asks for much context: the context-window tests fill it."""

from bot.core.skills import Skill

filler = Skill(
    name="filler",
    description="Long answers from many notes",
    instructions="You answer from the notes. Quote the notes you used and keep the answer short.",
    packs=("many-notes",),
    cite_sources=True,
    max_output_tokens=400,
    context_budget=5000,
)
