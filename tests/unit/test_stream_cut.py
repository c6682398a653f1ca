"""The built-in model's stream ends on the same text as its unstreamed answer: a loop's cut or a broken
tail is never shown first and taken back (the console prints tokens as they come)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from bot.models import embedded
from bot.models.repetition import final_text, loop_start

LOOPING_SENTENCE = (
    "Open the IT portal and choose VPN access. Your manager approves the request. "
    "Then install the client from the portal. Your manager approves the request. "
    "Your manager approves the request. Your manager approves the request."
)
LOOPING_PHRASE = (
    "To reset a token, open the portal. Sign in with SSO. Then click then click then click "
    "then click then click then click then click then click then click on the button."
)
LOOPING_LIST = (
    "Steps:\n1. Open the portal.\n2. Choose VPN access.\n3. Choose VPN access.\n4. Choose VPN access."
)
PLAIN = "Open the IT portal and choose VPN access. Your manager approves it within a day."
BROKEN_OFF = "Open the IT portal and choose VPN access. Your manager approves it within a"


def _tokens(text: str) -> list[str]:
    return re.findall(r"\s?\S{1,3}|\s", text)


def _model(monkeypatch: pytest.MonkeyPatch, text: str) -> list[str]:
    """The model writes `text` token by token, and its loop stopper ends the generation as in
    `embedded.loop_stopper`: checked every LOOP_CHECK_EVERY tokens."""
    tokens = _tokens(text)

    def generate(*_args: Any) -> Iterator[str]:
        for i, token in enumerate(tokens, start=1):
            yield token
            if i % embedded.LOOP_CHECK_EVERY == 0 and loop_start("".join(tokens[:i])) is not None:
                return

    monkeypatch.setattr(embedded, "_generate", generate)
    return tokens


@pytest.mark.parametrize("text", [LOOPING_SENTENCE, LOOPING_PHRASE, LOOPING_LIST, PLAIN, BROKEN_OFF])
def test_the_stream_never_shows_what_the_kept_answer_cuts(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    tokens = _model(monkeypatch, text)
    max_tokens = len(tokens) if text is BROKEN_OFF else 10_000  # the broken one hit the token limit
    generated: list[str] = []
    shown = ""
    for piece in embedded.chat_stream([], max_tokens, 0.2, generated):
        shown += piece
        final = final_text("".join(generated), hit_limit=len(generated) >= max_tokens)
        assert final.startswith(shown.strip()), shown  # nothing on screen is ever taken back
    assert shown.strip() == final_text("".join(generated), hit_limit=len(generated) >= max_tokens)
    if text in (LOOPING_SENTENCE, LOOPING_PHRASE, LOOPING_LIST):
        assert len(shown) < len("".join(generated))  # the loop was written, and cut
    if text is BROKEN_OFF:
        assert shown.strip().endswith("VPN access.")


def test_a_plain_answer_streams_token_by_token(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = _model(monkeypatch, PLAIN)
    pieces = list(embedded.chat_stream([], 10_000, 0.2))
    assert pieces == tokens  # one piece per token, as the model wrote them
