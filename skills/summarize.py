"""`/summarize` and the "Summarize thread" message shortcut: a thread → decisions, owners, open questions."""

from bot.core.skills import Skill

summarize = Skill(
    name="summarize",
    command="/summarize",
    shortcut="Summarize thread",
    description="Summarize a Slack thread or discussion: the decisions, the owners of next steps and the open "
    "questions.",
    tier="small",
    packs=("report-style",),
    examples=(
        "summarize this thread",
        "tl;dr of the discussion",
        "what did we decide and who owns what",
        "recap this conversation",
    ),
    instructions=(
        "Summarize the conversation for someone who missed it. Use three short sections: Decisions, Owners "
        "(who does what, as @name), Open questions. Only what was said; write '- None.' for an empty section."
    ),
    # a pasted transcript: two consecutive "Name (HH:MM): text" lines
    input_patterns=(r"^[^\n():]{1,40} \(\d{1,2}:\d{2}\): .*\n[^\n():]{1,40} \(\d{1,2}:\d{2}\): ",),
    uses_thread=True,
    max_output_tokens=400,
    context_budget=900,
)
