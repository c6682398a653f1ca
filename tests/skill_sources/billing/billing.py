"""A billing skill bound to a pack that asks for outbound redaction (the privacy tests)."""

from bot.core.skills import Skill

billing = Skill(
    name="billing",
    command="/billing",
    description="Billing questions",
    instructions="Answer billing questions.",
    packs=("billing-notes",),
    examples=("refund?",),
)
