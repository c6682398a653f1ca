"""`/glossary`: define Acme's internal jargon, from Acme's own glossary pack."""

from pydantic import BaseModel, Field

from bot.core.skills import Skill
from bot.evals.comparators import exact, fields_comparator


class Definition(BaseModel):
    term: str = Field(description="The term being defined, as written in the glossary")
    team: str = Field(description="The team that owns the term, from the glossary")
    definition: str = Field(description="One or two sentences from the glossary")


glossary = Skill(
    name="glossary",
    command="/glossary",
    description="Define Acme's internal jargon and acronyms from the Acme glossary.",
    tier="small",
    packs=("acme-glossary",),
    examples=("what does BRB mean at Acme", "define the term pager rotation"),
    output=Definition,
    instructions="Define the term using only the glossary. Name the team that owns it.",
    comparator=fields_comparator({"term": exact, "team": exact}),
    max_output_tokens=200,
    context_budget=600,
)
