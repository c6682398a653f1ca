"""The one Ladder: order, neighbours and the data boundary, with plain data."""

import pytest

from bot.core.ladder import Ladder, UnknownTierError

MIXED = Ladder.of([("tiny", "local"), ("small", "external"), ("medium", "local"), ("large", "external")])


def test_order_and_neighbours_without_sensitivity():
    assert MIXED.stronger("tiny") == "small"
    assert MIXED.cheaper("medium") == "small"
    assert MIXED.stronger("large") is None
    assert MIXED.cheaper("tiny") is None
    assert MIXED.cheapest() == "tiny" and MIXED.strongest() == "large"
    assert MIXED.steps("small", "large") == 2 and MIXED.is_stronger("large", "tiny")


def test_sensitive_work_skips_external_tiers():
    assert MIXED.allowed(sensitive=True) == ["tiny", "medium"]
    assert MIXED.stronger("tiny", sensitive=True) == "medium"
    assert MIXED.cheaper("large", sensitive=True) == "medium"
    assert MIXED.stronger("medium", sensitive=True) is None
    assert MIXED.neighbour("medium", "down", sensitive=True) == "tiny"
    assert MIXED.strongest(sensitive=True) == "medium"


def test_place_moves_to_the_nearest_local_tier_cheaper_first():
    assert MIXED.place("small", sensitive=False).tier == "small"
    placed = MIXED.place("small", sensitive=True, who="hunt")
    assert placed.tier == "tiny" and placed.moved
    assert placed.note == "sensitive: moved from external tier small to local tier tiny"
    only_up = Ladder.of([("a", "external"), ("b", "local")])
    assert only_up.place("a", sensitive=True).tier == "b"


def test_no_local_tier_refuses():
    cloud = Ladder.of([("small", "external"), ("large", "external")])
    placed = cloud.place("small", sensitive=True, who="hunt")
    assert placed.tier is None
    assert placed.note == "hunt handles sensitive data and no local tier is configured"
    assert cloud.cheapest(sensitive=True) is None


def test_others_nearest_first():
    assert MIXED.others("small") == ["tiny", "medium", "large"]
    assert MIXED.others("medium", sensitive=True) == ["tiny"]


def test_unknown_tier_and_bad_ladders():
    with pytest.raises(UnknownTierError, match="Valid tiers: tiny, small, medium, large"):
        MIXED.index("huge")
    with pytest.raises(ValueError):
        Ladder(())
    with pytest.raises(ValueError):
        Ladder(("a", "a"))
    assert Ladder(("a",)).boundary("a") == "external"  # unknown boundary: the safe default
