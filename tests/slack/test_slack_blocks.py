"""Block Kit builders and the App Home view (pure), checked with the shared validator."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackObjectFormationError

from bot.adapters.slack.blocks import (
    asked_line,
    feedback_modal,
    progress_message,
    reply_messages,
    split_text,
)
from bot.adapters.slack.home import SkillAdminRow, SkillCard, home_view
from bot.adapters.slack.ids import FEEDBACK_NATIVE
from bot.core.types import Reply
from tests.fakes.fake_slack import load_fixture
from tests.slack_helpers import limits, validate_message_blocks, validate_message_payload, validate_view


def _reply(text: str = "ok", **kwargs: object) -> Reply:
    base: dict[str, object] = {
        "status": "ok",
        "skill": "ask",
        "request_id": "r0123456789abcdef",
        "tier": "small",
        "model": "gpt_4o_mini",
        "cost_usd": 0.0012,
        "latency_s": 1.4,
    }
    base.update(kwargs)
    return Reply(text=text, **base)  # type: ignore[arg-type]


def _check(messages: list) -> None:
    for message in messages:
        validate_message_payload({"text": message.text, "blocks": message.blocks}, update=True)


# Changed on purpose (issue 11): answer bodies are `markdown` blocks (Slack renders the model's Markdown;
# no conversion to mrkdwn) and feedback is Slack's native feedback_buttons in a context_actions block.


def test_short_answer_is_one_message_with_footer_and_buttons() -> None:
    [message] = reply_messages(_reply("**Yes**, use the [portal](https://it.example.com)."))
    _check([message])
    body, footer, actions = message.blocks
    assert body == {"type": "markdown", "text": "**Yes**, use the [portal](https://it.example.com)."}
    assert footer["elements"][0] == {
        "type": "plain_text",
        "text": "ask · small · gpt_4o_mini · $0.0012 · 1.4s",
    }
    assert actions["type"] == "context_actions"
    [buttons] = actions["elements"]
    assert buttons["type"] == "feedback_buttons" and buttons["action_id"] == FEEDBACK_NATIVE
    assert buttons["positive_button"]["value"] == "up:r0123456789abcdef"
    assert buttons["negative_button"]["value"] == "down:r0123456789abcdef"
    assert message.text.startswith("**Yes**")  # the plain-text fallback


def test_20000_char_answer_splits_into_markdown_payloads_within_limits() -> None:
    paragraphs = [f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 30 for i in range(25)]
    text = "\n\n".join(paragraphs)
    assert len(text) > 20_000
    messages = reply_messages(_reply(text))
    _check(messages)
    assert len(messages) >= 2
    bodies = [b for m in messages for b in m.blocks if b["type"] == "markdown"]
    limit = limits()["block_kit.markdown_block_text_max_chars"]
    for m in messages:  # the 12,000 characters are cumulative per payload
        assert sum(len(b["text"]) for b in m.blocks if b["type"] == "markdown") <= limit
    # nothing lost, nothing cut mid-paragraph
    assert "\n".join(b["text"] for b in bodies).replace("\n", "") == text.replace("\n", "")
    # the footer and the buttons come once, at the very end
    assert [b["type"] for b in messages[-1].blocks][-2:] == ["context", "context_actions"]
    assert all(b["type"] == "markdown" for m in messages[:-1] for b in m.blocks)


def test_350k_answer_goes_to_one_markdown_payload_per_message() -> None:
    text = "\n\n".join("x" * 2900 for _ in range(120))  # ~350k chars
    messages = reply_messages(_reply(text))
    _check(messages)
    limit = limits()["block_kit.markdown_block_text_max_chars"]
    assert len(messages) == 120 // 4  # 4 paragraphs (11,606 chars) fit a 12,000-character payload, 5 do not
    for m in messages:
        assert len(m.blocks) <= limits()["message.blocks_per_message"]
        assert sum(len(b["text"]) for b in m.blocks if b["type"] == "markdown") <= limit
    bodies = [b["text"] for m in messages for b in m.blocks if b["type"] == "markdown"]
    assert "".join(bodies).replace("\n", "") == text.replace("\n", "")


def test_model_pings_are_neutralised_and_50000_chars_stay_within_limits() -> None:
    text = "Hey <!channel> and <!here>, ask <@U123ABC> or <!subteam^S1|@team>; @everyone see this. " * 600
    assert len(text) > 50_000
    messages = reply_messages(_reply(text))
    _check(messages)
    bodies = "".join(b["text"] for m in messages for b in m.blocks if b["type"] == "markdown")
    for ping in ("<!channel>", "<!here>", "<@U123ABC>", "<!subteam^", " @everyone"):
        assert ping not in bodies
    assert "<\u200b!channel>" in bodies and "@\u200beveryone" in bodies  # still readable


def test_split_keeps_code_blocks_closed_in_every_chunk() -> None:
    text = "Intro\n```\n" + "\n".join(f"line {i} of code" for i in range(600)) + "\n```\nOutro"
    chunks = split_text(text, 3000)
    assert len(chunks) >= 3
    for chunk in chunks:
        assert len(chunk) <= 3000
        assert chunk.count("```") % 2 == 0, chunk[-40:]


def test_split_never_cuts_a_link_or_an_entity() -> None:
    link = "<https://example.com/" + "a" * 40 + "|a link>"
    text = " ".join([link, "&amp;"] * 200)
    for chunk in split_text(text, 500):
        assert chunk.count("<") == chunk.count(">")
        assert chunk.count("&") == chunk.count("&amp;")


def test_structured_output_is_fields_not_json() -> None:
    data = {"category": "billing", "priority": "high", "tags": ["invoice", "overdue"], "escalate": True}
    [message] = reply_messages(_reply("ignored", structured=data))
    _check([message])
    fields = [f["text"] for f in message.blocks[0]["fields"]]
    assert fields == [
        "*Category*\nbilling",
        "*Priority*\nhigh",
        "*Tags*\ninvoice, overdue",
        "*Escalate*\nYes",
    ]
    assert "{" not in message.text


def test_long_structured_values_get_their_own_section() -> None:
    data = {"severity": "high", "reasoning": "word " * 1000, **{f"f{i}": i for i in range(12)}}
    [message] = reply_messages(_reply("x", structured=data))
    _check([message])
    kinds = [("fields" if "fields" in b else b["type"]) for b in message.blocks]
    assert kinds[:2] == ["fields", "fields"]  # 13 short fields: 10 + 3
    assert message.blocks[2]["text"]["text"].startswith("*Reasoning*")


def test_error_reply_is_one_line_without_buttons() -> None:
    reply = _reply("Sorry: the model timed out. (request r1)", status="error")
    [message] = reply_messages(reply)
    _check([message])
    assert message.blocks[0]["text"]["text"] == "Sorry: the model timed out. (request r1)"
    assert all(b["type"] != "actions" for b in message.blocks)


def test_asked_line_heads_the_answer_and_is_escaped() -> None:
    asked = asked_line("U1", "/ask", "is a < b?")
    [message] = reply_messages(_reply("yes"), asked=asked)
    _check([message])
    assert message.blocks[0]["elements"][0]["text"] == "<@U1> used `/ask`: is a &lt; b?"


def test_notes_and_sources_go_in_the_footer() -> None:
    [message] = reply_messages(_reply("yes", notes=["budget: stepped down"], sources=("it/vpn.md",)))
    texts = [e["text"] for e in message.blocks[1]["elements"]]
    assert texts[1:] == ["budget: stepped down", "Sources: it/vpn.md"]


def test_progress_message_and_modal_are_valid() -> None:
    placeholder = progress_message(asked_line("U1", "/ask", "q"))
    validate_message_blocks(placeholder.blocks)
    view = feedback_modal("r0123456789abcdef")
    validate_view(view)
    assert view["private_metadata"] == "r0123456789abcdef"
    assert view["type"] == "modal"


CARDS = [
    SkillCard("ask", "/ask", "Answer questions.", ("How do I get VPN?",)),
    SkillCard("summarize", "/summarize", "Summaries.", (), "Summarize thread"),
]
ROWS = [SkillAdminRow("ask", "small", "skill default", 12, 0.0321, 0, 3, 1)]


def test_home_for_users_has_skills_only() -> None:
    view = home_view(CARDS, None)
    validate_view(view)
    text = str(view)
    assert "/ask" in text and "How do I get VPN?" in text and "Summarize thread" in text
    assert "Admin" not in text and "Requests" not in text


def test_home_for_admins_adds_usage_and_tiers() -> None:
    view = home_view(CARDS, ROWS)
    validate_view(view)
    fields = [f["text"] for b in view["blocks"] for f in b.get("fields", [])]
    assert fields == [
        "*ask*\ntier `small` (skill default)",
        "*Requests*\n12",
        "*Cost*\n$0.0321",
        "*👍 rate*\n75% (3/4)",
    ]


@pytest.mark.parametrize("admin", [False, True])
def test_home_stays_within_100_blocks(admin: bool) -> None:
    cards = [SkillCard(f"s{i}", f"/s{i}", "d", ("e",)) for i in range(120)]
    rows = [SkillAdminRow(f"s{i}", "small", "x") for i in range(120)] if admin else None
    view = home_view(cards, rows)
    validate_view(view)
    assert "more" in str(view["blocks"][-1] if not admin else view["blocks"])


@pytest.mark.parametrize(
    "sample",
    ["invalid_section_text_plain_string", "invalid_unknown_block_type", "invalid_unknown_block_type_bare"],
)
def test_the_validator_rejects_slacks_invalid_samples(sample: str) -> None:
    with pytest.raises((AssertionError, SlackObjectFormationError)):
        validate_message_blocks(load_fixture(f"blockkit/samples/{sample}.json"))


def test_the_validator_enforces_limits() -> None:
    validate_message_blocks(load_fixture("blockkit/samples/valid_section_actions_context.json"))
    with pytest.raises(AssertionError):
        validate_message_blocks([{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}] * 51)
    with pytest.raises(SlackObjectFormationError):  # slack_sdk's own check comes first
        validate_message_blocks([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}])
    long_title = {"type": "plain_text", "text": "A title longer than 24 chars"}
    with pytest.raises((AssertionError, SlackObjectFormationError)):
        validate_view({"type": "modal", "title": long_title, "blocks": [{"type": "divider"}]})
