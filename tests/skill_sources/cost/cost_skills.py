"""Two priced skills for the cost tests: free text and JSON."""

from pydantic import BaseModel

from bot.core.skills import Skill


class Answer(BaseModel):
    answer: str


costly = Skill(name="costly", description="Priced answers", instructions="Answer.")
costly_json = Skill(name="costly-json", description="Priced JSON", instructions="JSON.", output=Answer)
