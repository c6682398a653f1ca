"""`/label-email`: paste an email → category, priority, routing team and a one-line reason."""

from typing import Literal

from pydantic import BaseModel, Field

from bot.evals.comparators import exact, fields_comparator
from bot.skills import Skill

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
    instructions=(
        "You label incoming email for Larkspur Systems. Read the email the user pasted and label it using only "
        "the categories, priorities and teams defined in the taxonomy. Follow the tie-break rules. The reason is "
        "one short line naming the signal you used."
    ),
    max_output_tokens=200,
    context_budget=1800,
    comparator=fields_comparator({"category": exact, "priority": exact, "team": exact}),
)
