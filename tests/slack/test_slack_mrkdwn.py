"""Markdown → Slack mrkdwn (pure)."""

from __future__ import annotations

import pytest

from bot.adapters.slack.mrkdwn import escape, to_mrkdwn, unescape


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("**bold** and __also__", "*bold* and *also*"),
        ("*italic* and _italic_", "_italic_ and _italic_"),
        ("~~gone~~", "~gone~"),
        ("# Title", "*Title*"),
        ("### Steps to **follow** ###", "*Steps to follow*"),
        ("[the guide](https://wiki.example.com/vpn)", "<https://wiki.example.com/vpn|the guide>"),
        ("[**bold** link](https://x.io)", "<https://x.io|bold link>"),
        ("![diagram](https://x.io/a.png)", "<https://x.io/a.png|diagram>"),
        ("see <https://x.io/a>", "see <https://x.io/a>"),
        ("- one\n- two", "• one\n• two"),
        ("* one\n  * nested", "• one\n    ◦ nested"),
        ("1. first\n2) second", "1. first\n2. second"),
        ("- [x] done\n- [ ] todo", "• ☑ done\n• ☐ todo"),
        ("> quoted **bit**", "> quoted *bit*"),
        ("---", "──────────"),
        ("2*3*4 and snake_case_name", "2*3*4 and snake_case_name"),
    ],
)
def test_markup(markdown: str, expected: str) -> None:
    assert to_mrkdwn(markdown) == expected


def test_code_is_kept_verbatim_and_only_escaped() -> None:
    text = "Run `a < b && **c**` then:\n```python\nif x < 1:\n    print('**no**')\n```"
    assert to_mrkdwn(text) == (
        "Run `a &lt; b &amp;&amp; **c**` then:\n```\nif x &lt; 1:\n    print('**no**')\n```"
    )


def test_unterminated_code_block_is_closed() -> None:
    assert to_mrkdwn("```\ncode") == "```\ncode\n```"


def test_model_output_cannot_ping_or_inject_markup() -> None:
    out = to_mrkdwn("Hey <!channel> and <@U123>, a & b")
    assert out == "Hey &lt;!channel&gt; and &lt;@U123&gt;, a &amp; b"
    assert "<!" not in out and "<@" not in out


def test_link_url_is_escaped() -> None:
    assert to_mrkdwn("[q](https://x.io/?a=1&b=2)") == "<https://x.io/?a=1&amp;b=2|q>"


def test_table_becomes_aligned_code_block() -> None:
    table = "| Tier | Cost |\n|---|---:|\n| small | $0.01 |\n| large | $1 |"
    assert to_mrkdwn(table) == "```\nTier  | Cost\n------+------\nsmall | $0.01\nlarge | $1\n```"


def test_pipe_line_without_separator_is_text() -> None:
    assert to_mrkdwn("| not a table |") == "| not a table |"


def test_escape_roundtrip() -> None:
    text = "a < b & c > d"
    assert unescape(escape(text)) == text
