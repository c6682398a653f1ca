"""publish_digest: the one build → store → ids → (auto-apply) → post sequence that the scheduler,
the CLI's `digest --post` and the admin's "digest" command share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.economics.context import EconomicsContext
from bot.economics.digest import Digest, publish_digest
from bot.ledger.models import Recommendation
from tests.ledger_builder import W46, seeded_engine


def stored(engine: Any) -> dict[str, Recommendation]:
    with engine.ledger.session() as s:
        return {r.skill: r for r in s.execute(select(Recommendation)).scalars()}


def test_the_posted_digest_carries_the_stored_open_recommendation_ids(make_engine: Any) -> None:
    engine = seeded_engine(make_engine)
    posted: list[Digest] = []

    def post(d: Digest) -> dict[str, Any]:
        posted.append(d)
        return {"ts": "1.0"}

    published = publish_digest(EconomicsContext.of(engine), W46, post)
    assert posted == [published.digest] and published.detail == {"ts": "1.0"}
    rows = stored(engine)
    assert set(rows) == {r.skill for r in published.digest.recommendations}
    open_ids = {skill: r.id for skill, r in rows.items() if r.status == "open"}
    assert published.digest.recommendation_ids == open_ids
    assert set(open_ids) == {"label-email", "ask"}
    assert published.applied == []  # auto-apply is the scheduler's choice only


def test_without_a_poster_the_recommendations_are_still_stored(make_engine: Any) -> None:
    engine = seeded_engine(make_engine)
    published = publish_digest(EconomicsContext.of(engine), W46, None)
    assert published.detail == {}
    assert set(stored(engine)) == {r.skill for r in published.digest.recommendations}


def test_auto_apply_applies_before_posting(make_engine: Any) -> None:
    skills = {"label-email": {"tier": "medium", "auto_apply": True}, "summarize": {"tier": "medium"}}
    engine = seeded_engine(make_engine, skills=skills)
    seen: list[str] = []

    def post(d: Digest) -> dict[str, Any]:
        seen.append(stored(engine)["label-email"].status)  # what the admin channel will see
        return {}

    published = publish_digest(EconomicsContext.of(engine), W46, post, auto_apply=True)
    assert published.applied == ["label-email: medium → small"]
    assert seen == ["applied"]


def test_auto_apply_is_off_by_default(make_engine: Any) -> None:
    skills = {"label-email": {"tier": "medium", "auto_apply": True}, "summarize": {"tier": "medium"}}
    engine = seeded_engine(make_engine, skills=skills)
    assert publish_digest(EconomicsContext.of(engine), W46, None).applied == []
    assert stored(engine)["label-email"].status == "open"
    assert engine.ledger.tier_history() == []
