"""`/label-email`: paste an email → category, priority, routing team and a one-line reason."""

from typing import Literal

from pydantic import BaseModel, Field

from bot.context.pack_rules import RuleError, Taxonomy, taxonomy
from bot.core.skills import Skill
from bot.core.verify import Check, VerifyContext
from bot.evals.comparators import exact, fields_comparator

PACK = "email-taxonomy"

Category = Literal[
    "billing", "technical-support", "sales-inquiry", "security-report", "phishing", "hr-people",
    "legal-compliance", "partnership", "recruiting", "vendor-invoice", "it-request", "spam", "other",
]  # fmt: skip
Team = Literal[
    "finance-billing", "customer-support", "sales", "security-ops", "people-ops", "legal", "partnerships",
    "talent", "finance-ap", "it-helpdesk", "none", "triage-desk",
]  # fmt: skip


class EmailLabel(BaseModel):
    category: Category
    priority: Literal["low", "normal", "high", "urgent"]
    team: Team
    reason: str = Field(min_length=3, max_length=300, description="One line: why this label.")


def _rules(context: VerifyContext) -> Taxonomy | str:
    pack = context.pack(PACK)
    if pack is None:
        return f"the {PACK} pack is not loaded"
    try:
        return taxonomy(pack.root, PACK)
    except RuleError as exc:
        return str(exc)


def routes_by_taxonomy(label: EmailLabel, context: VerifyContext) -> Check:
    """The team is the category's team in the taxonomy table, or one of its listed routing exceptions
    (e.g. phishing must go to security-ops)."""
    name = "routing"
    rules = _rules(context)
    if isinstance(rules, str):
        return Check.not_run(name, rules)
    allowed = rules.teams_for(label.category)
    if not allowed:
        return Check.not_run(name, f"{rules.source} has no row for category {label.category}")
    if label.team not in allowed:
        return Check.failed(
            name,
            f"{label.category} routes to {' or '.join(sorted(allowed))} ({rules.source}), not {label.team}",
        )
    return Check.passed(name, f"{label.category} → {label.team} as {rules.source} routes it")


def priority_by_taxonomy(label: EmailLabel, context: VerifyContext) -> Check:
    """The taxonomy's fixed priorities: every spam email is low; phishing is never low."""
    name = "priority-rules"
    rules = _rules(context)
    if isinstance(rules, str):
        return Check.not_run(name, rules)
    if (label.category, label.priority) in rules.never:
        return Check.failed(name, f"{label.category} is never {label.priority} ({rules.source})")
    fixed = rules.always.get(label.category)
    if fixed and label.priority != fixed:
        return Check.failed(
            name, f"every {label.category} email is {fixed} ({rules.source}), not {label.priority}"
        )
    return Check.passed(name, "no fixed-priority rule broken")


label_email = Skill(
    name="label-email",
    command="/label-email",
    description="Label an email with a category, priority and routing team, following our email taxonomy.",
    tier="small",
    packs=("email-taxonomy",),
    examples=(
        "label this email",
        "which team should handle this email",
        "categorize this customer email and set its priority",
        "From: Subject: invoice overdue",
    ),
    input_patterns=(r"^\s*(from|subject|reply-to|received):\s*\S",),
    output=EmailLabel,
    verifiers=(routes_by_taxonomy, priority_by_taxonomy),
    instructions=(
        "You label incoming email for Larkspur Systems. Read the email the user pasted and label it using only "
        "the categories, priorities and teams defined in the taxonomy. Follow the tie-break rules. The reason is "
        "one short line naming the signal you used."
    ),
    max_output_tokens=200,
    context_budget=1800,
    comparator=fields_comparator({"category": exact, "priority": exact, "team": exact}),
)
