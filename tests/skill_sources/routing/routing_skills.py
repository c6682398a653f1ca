"""Three skills with distinct vocabularies for the routing tests."""

from bot.core.skills import Skill

zorb = Skill(
    name="zorb-report",
    description="Compile zorblax telemetry digests",
    instructions="You compile zorblax digests.",
    examples=("Compile the zorblax digest for Friday",),
)
quux = Skill(
    name="quux-audit",
    description="Audit quuxification ledgers for drift",
    instructions="You audit quuxification ledgers.",
    examples=("Audit the quuxification ledger",),
)
flurb = Skill(
    name="flurb-plan",
    description="Plan flurbington migrations between clusters",
    instructions="You plan flurbington migrations.",
    examples=("Plan the flurbington migration",),
)
