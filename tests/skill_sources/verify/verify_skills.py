"""Skills with verifiers for the verification tests: a passing/failing check, a crashing one, none."""

from pydantic import BaseModel

from bot.core.skills import Skill
from bot.core.verify import Check


class Count(BaseModel):
    items: list[str]
    total: int


def total_matches(out, context):
    """The total is the number of items: cheap to check, easy to get wrong."""
    if out.total != len(out.items):
        return Check.failed("total", f"total {out.total} but {len(out.items)} items")
    return Check.passed("total", "total matches the items")


def mentions_request(out, context):
    if not context.text:
        return Check.not_run("echo", "no request text")
    return Check.passed("echo", "request seen", show=f"checked against: {context.text[:20]}")


def crashes(out, context):
    raise RuntimeError("boom")


counter = Skill(
    name="counter",
    description="Count the items",
    instructions="Count the items.",
    output=Count,
    verifiers=(total_matches, mentions_request),
)
fragile = Skill(
    name="fragile",
    description="Count with a broken check",
    instructions="Count.",
    output=Count,
    verifiers=(crashes,),
)
chatty = Skill(name="chatty", description="Chat", instructions="Chat.")
