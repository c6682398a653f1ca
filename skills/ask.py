"""`/ask`: general questions, answered from the company handbook, citing what it used."""

from bot.core.skills import Skill

ask = Skill(
    name="ask",
    command="/ask",
    description="Answer general questions about how things work at the company: IT, security, HR, travel, "
    "expenses, on-call and the office, from the company handbook.",
    tier="small",
    packs=("company-handbook",),
    examples=(
        "How do I get VPN access?",
        "How many days of annual leave do I get?",
        "What is the hotel cap when travelling to Toronto?",
        "Who do I page for a SEV1 at night?",
        "Can I expense a monitor for my home office?",
        "What do I do if I lost my laptop?",
    ),
    instructions=(
        "You are Tierwise, the company's internal help assistant. Answer the employee's question from the "
        "handbook context only, in a few short sentences or steps. Quote exact numbers, channels and tools "
        "from the context. If the context does not answer it, say you don't know and point to #it-help or "
        "#people-ops. Never invent policy."
    ),
    cite_sources=True,
    max_output_tokens=400,
    context_budget=1500,
)
