"""Skills for the engine tests: free text, structured output, sensitive, tiered, channel-bound, with packs."""

from pydantic import BaseModel, Field

from bot.core.skills import InputError, Skill


class Verdict(BaseModel):
    label: str
    confidence: float = Field(ge=0, le=1)


def no_shouting(text):
    if text.isupper():
        raise InputError("Please don't shout.")
    return text


plain = Skill(
    name="plain",
    description="Answer zorblax questions",
    instructions="You answer zorblax questions.",
    packs=("eng-docs",),
    examples=("What is zorblax?",),
    prepare_input=no_shouting,
)
classify = Skill(
    name="classify",
    description="Classify quuxware",
    instructions="Classify quuxware.",
    output=Verdict,
)
classify_top = Skill(
    name="classify-top",
    description="Classify flurbware",
    instructions="Classify flurbware.",
    output=Verdict,
    tier="large",
)
vault = Skill(
    name="vault",
    description="Vault secrets",
    instructions="Handle vault secrets.",
    sensitive=True,
)
vault_top = Skill(
    name="vault-top",
    description="Vault secrets, hard ones",
    instructions="Handle hard vault secrets.",
    sensitive=True,
    tier="large",
)
vault_classify = Skill(
    name="vault-classify",
    description="Classify vault entries",
    instructions="Classify vault entries.",
    output=Verdict,
    sensitive=True,
    tier="medium",
)
incident = Skill(
    name="incident",
    description="Incident notes",
    instructions="Summarise incident notes.",
    packs=("secret-notes",),
)
secops_only = Skill(
    name="secops-only",
    description="Secops only",
    instructions="Secops.",
    channels=("secops",),
)
chan_pack = Skill(
    name="chan-pack",
    description="Channel-bound pack",
    instructions="Incident room.",
    packs=("chan-notes",),
)
