"""`/report`: bullet notes, or the current thread, → a report in one of our templates and style."""

from bot.core.skills import Skill

write_report = Skill(
    name="write-report",
    command="/report",
    description="Write a report from bullet notes or a thread: weekly status, incident post-mortem or project "
    "update, in our templates and style guide.",
    tier="small",
    packs=("report-style",),
    examples=(
        "write a weekly status report from these notes",
        "draft the incident post-mortem",
        "project update for the route optimizer migration",
        "turn these bullets into a report",
    ),
    input_patterns=(
        r"^\s*/?report\b",
        # report words in a multi-line paste of notes (a one-line question about post-mortems is for `ask`)
        r"(?s)\b(weekly[ -]status|status report|week of|post-?mortem|incident review|project update)\b.*\n.*\n",
    ),
    instructions=(
        "You write reports for Larkspur Systems. Pick the template that fits the request (weekly status, "
        "incident post-mortem or project update; the user may name it), use its section headings in order, keep "
        "every fact from the notes and invent none, and follow the style guide. Output Markdown only."
    ),
    uses_thread=True,
    max_output_tokens=900,
    context_budget=2000,
)
