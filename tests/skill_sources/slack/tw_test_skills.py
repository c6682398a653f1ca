"""Skills for the Slack tests, independent of the built-in ones (which other work may change)."""

from pydantic import BaseModel

from bot.core.skills import Skill


class Ticket(BaseModel):
    category: str
    priority: str
    tags: list[str]
    reason: str


tw_digest = Skill(
    name="tw-digest",
    command="/tw-digest",
    shortcut="Digest thread",
    uses_thread=True,
    description="Digest a discussion thread into decisions and owners.",
    instructions="Digest the thread.",
    examples=("digest this thread",),
)
tw_label = Skill(
    name="tw-label",
    command="/tw-label",
    output=Ticket,
    description="Label a support ticket with a category and priority.",
    instructions="Label the ticket.",
    examples=("label this ticket",),
)
tw_vault = Skill(
    name="tw-vault",
    command="/tw-vault",
    channels=("vault",),
    description="Answer questions about the vault, only in #vault.",
    instructions="Answer.",
    examples=("where is the vault key",),
)
