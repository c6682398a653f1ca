"""A tiny handbook skill the embedded model can answer quickly."""

from bot.core.skills import Skill

tiny = Skill(
    name="tiny-ask",
    description="Handbook questions, briefly",
    instructions="Answer the employee's question from the handbook context in one short sentence.",
    packs=("company-handbook",),
    max_output_tokens=32,
    context_budget=120,
)
