"""Tier-aware context (issue 14): each tier's budget in tokens and sections, the always-included part
kept proportionate, the best section first, citations, defaults by model size, the start-up warning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import EMBEDDED_MODEL, TierConfig
from bot.context.packs import (
    Pack,
    builtin_packs_dir,
    load_pack,
    load_packs,
    oversized_always,
    rank_chunks,
    select_tiered,
)


def words(text: str) -> int:
    """A deterministic stand-in tokenizer: one token per whitespace-separated word."""
    return len(text.split())


@pytest.fixture(scope="module")
def handbook() -> Pack:
    packs, _ = load_packs([builtin_packs_dir()])
    return packs["company-handbook"]


QUESTIONS = [
    "How do I get VPN access?",
    "hotel cap london?",
    "Who do I page for a SEV1 at night?",
    "Can I expense a new desk chair for working from home?",
    "what data class is our source code",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    budget=st.integers(min_value=0, max_value=2500),
    chunks=st.integers(min_value=1, max_value=6),
    share=st.floats(min_value=0.05, max_value=1.0),
    question=st.sampled_from(QUESTIONS),
)
def test_selection_stays_within_every_budget(
    handbook: Pack, budget: int, chunks: int, share: float, question: str
) -> None:
    sel = select_tiered([handbook], question, budget, words, None, chunks, share)
    # Never over the tier's budget, in tokens or in sections.
    assert sel.tokens <= budget
    assert words(sel.text) <= budget
    assert sel.chunks <= chunks
    # The always-included part is proportionate: never more than its share of the budget.
    assert sel.always_tokens <= int(budget * share)
    always = [p for p in sel.pieces if p.startswith("[about-larkspur.md")]
    assert sum(words(p) for p in always) <= int(budget * share)
    # The best section leads whenever any section was selected.
    best = rank_chunks(handbook, question, None)[0][0]
    if sel.chunks:
        head = f"[{best.doc} — "
        assert sel.pieces[0].startswith(head)
        assert sel.citations[0].doc == best.doc and sel.citations[0].section == best.heading
    # Citations match what is in the text, one per piece.
    assert len(sel.citations) == len(sel.pieces)
    for cite, piece in zip(sel.citations, sel.pieces, strict=True):
        assert piece.startswith(f"[{cite.doc} — ")


def test_embedded_tier_gets_the_single_best_section_and_a_relevant_slice(handbook: Pack) -> None:
    limits = TierConfig(model=EMBEDDED_MODEL).context_limits
    assert (limits.tokens, limits.chunks) == (400, 1)
    sel = select_tiered(
        [handbook], "How do I get VPN access?", limits.tokens, words, None, limits.chunks, limits.always_share
    )
    assert sel.chunks == 1
    assert sel.pieces[0].startswith("[it/vpn-access.md — VPN and private access (Zscaler ZPA) › How to get")
    assert "Request app" in sel.pieces[0]
    # Not the whole about-larkspur.md: its section about where to ask (which mentions access).
    about = handbook.always_documents()[0]
    assert about.text not in sel.text
    assert sel.citations[-1].doc == "about-larkspur.md"
    assert sel.citations[-1].section == "Which Slack channel to use"
    assert "#it-help" in sel.pieces[-1]
    assert sel.sources == ("it/vpn-access.md", "about-larkspur.md")


def test_tier_defaults_by_model_size() -> None:
    assert TierConfig(model=EMBEDDED_MODEL).context_limits == (400, 1, 0.25)
    assert TierConfig(model="openai/tiny", context_window=3000).context_limits == (1000, 3, 0.4)
    assert TierConfig(model="openai/gpt-4o-mini").context_limits == (6000, 12, 1.0)
    own = TierConfig(model=EMBEDDED_MODEL, context_tokens=900, context_chunks=2, always_share=0.5)
    assert own.context_limits == (900, 2, 0.5)


@pytest.mark.parametrize(
    ("field", "value"), [("context_tokens", 0), ("context_chunks", 0), ("always_share", 1.5)]
)
def test_bad_context_limits_are_refused(field: str, value: Any) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        TierConfig(model=EMBEDDED_MODEL, **{field: value})


def test_best_section_is_cut_to_fit_rather_than_replaced(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "pack.toml").write_text('name = "p"\n')
    (root / "vpn.md").write_text("# VPN\n\n" + "\n".join(f"VPN access step {i} of many." for i in range(60)))
    (root / "other.md").write_text("# Other\n\nA short note on access.")
    pack = load_pack(root)
    assert rank_chunks(pack, "VPN steps", None)[0][0].doc == "vpn.md"
    sel = select_tiered([pack], "VPN steps", 40, words, None, 1, 0.25)
    assert sel.pieces[0].startswith("[vpn.md — VPN]")
    assert sel.tokens <= 40


def test_citations_link_when_the_pack_declares_a_base_url(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "pack.toml").write_text('name = "p"\nbase_url = "https://handbook.example.com/docs/"\n')
    (root / "it").mkdir()
    (root / "it" / "vpn.md").write_text("# VPN\n\n## Requesting access\nRequest ZPA in Okta.")
    sel = select_tiered([load_pack(root)], "VPN access", 500, words, None, 3, 0.5)
    [cite] = sel.citations
    assert cite.url == "https://handbook.example.com/docs/it/vpn.md#requesting-access"
    assert cite.label == "VPN › Requesting access"


def test_a_bad_base_url_is_a_pack_problem(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "pack.toml").write_text('name = "p"\nbase_url = "handbook"\n')
    (root / "a.md").write_text("# A\n\ntext")
    with pytest.raises(ValueError, match="base_url must be an http"):
        load_pack(root)


def test_warning_names_pack_document_and_tier(handbook: Pack) -> None:
    warnings = oversized_always([handbook], {"small": 300, "large": 6000}, lambda tier, text: words(text))
    [line] = warnings
    assert "pack company-handbook" in line and "about-larkspur.md" in line
    assert "tier small (300)" in line and "large (" not in line
    assert oversized_always([handbook], {"large": 6000}, lambda tier, text: words(text)) == []
