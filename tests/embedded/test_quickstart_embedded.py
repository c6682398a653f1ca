"""The README's quick start on the embedded model, for real (issue 14): `tierwise ask "How do I get VPN
access?"` answers from the handbook's VPN section, mentions Zscaler/ZPA, and lists it/vpn-access.md
as its source, in a prompt the 135M model can use (under 600 tokens)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from bot.adapters.cli import app
from bot.models import embedded

pytestmark = [
    pytest.mark.embedded,
    pytest.mark.skipif(not embedded.available(), reason=embedded.INSTALL_HINT),
]


def test_quick_start_answer_cites_the_vpn_document_and_names_zpa() -> None:
    result = CliRunner().invoke(app, ["ask", "--json", "How do I get VPN access?"])
    assert result.exit_code == 0, result.output
    import json

    reply = json.loads(result.stdout)
    assert reply["status"] == "ok"
    assert reply["citations"][0]["doc"] == "it/vpn-access.md"
    assert re.search(r"zscaler|zpa", reply["text"], re.IGNORECASE), reply["text"]
    assert 0 < reply["prompt_tokens"] < 600
    assert reply["embedded"] is True
    print(f"quick start ({reply['prompt_tokens']}→{reply['completion_tokens']} tokens): {reply['text']!r}")


def test_quick_start_in_the_terminal_lists_sources_and_the_label() -> None:
    # The same answer, as a person sees it (the first run above warmed the pack index only).
    result = CliRunner().invoke(app, ["ask", "How do I get VPN access?"])
    assert result.exit_code == 0, result.output
    assert (
        "Sources:\n  • VPN and private access (Zscaler ZPA) › How to get VPN (ZPA) access — it/vpn-access.md"
        in (result.stdout)
    )
    assert "tierwise.example.toml" in result.stdout
