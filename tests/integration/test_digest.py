"""The weekly digest over a ledger with known rows: every figure, every renderer, the chart, posting.

The scenario (tests/ledger_builder.py `seed_week46`) is ISO week 2026-W46 (2026-11-09 → 11-16 UTC):

    skill         tier    W46 requests  users  cost        W45 requests  cost
    label-email   medium  8             2      0.5         4             0.25
    ask           small   6             3      0.09375     2             0.03125
    summarize     medium  3 (1 unpriced) 3     0.0625      0             0
    triage-alert  small   1 (+1 escalation row) 1  0.0078125 + 0.015625
    side spend: shadow 0.25, judge 0.125, eval 0.5 (W45: shadow 1.0)
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import jsonschema
import pytest
from slack_sdk.models.blocks import Block

from bot.adapters.slack import digest as digest_blocks
from bot.core.evidence import TierRecommendation
from bot.core.periods import week_bounds
from bot.economics import digest as digest_mod
from bot.economics.context import EconomicsContext
from bot.economics.digest import Digest, SkillLine, Totals
from bot.economics.tier_review import review
from tests.fakes.fake_slack import FakeSlack
from tests.ledger_builder import (
    ASK_REASON,
    LABEL_REASON,
    SUMMARIZE_REASON,
    W46,
    W46_END,
    W46_TOTALS,
    LedgerBuilder,
    at,
    scenario_engine,
    scenario_settings,
    seeded_engine,
)
from tests.paths import TESTS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SCHEMA = json.loads(
    (TESTS / "fixtures" / "slack" / "blockkit" / "known_blocks_array.schema.json").read_text(encoding="utf-8")
)
BLOCKS_VALIDATOR = jsonschema.Draft7Validator(SCHEMA)

HEADLINE = "Tierwise digest 2026-W46: 18 requests (+200% vs last week) from 6 people, $0.68 (+142%)."


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One seeded engine for the read-only tests of this module (building it per test is slow)."""
    return scenario_engine(tmp_path_factory.mktemp("w46"))


@pytest.fixture(scope="module")
def w46_built(scenario: Any) -> Digest:
    return digest_mod.build_digest(EconomicsContext.of(scenario), W46)


@pytest.fixture
def w46(w46_built: Digest) -> Digest:
    return replace(w46_built, recommendation_ids={})  # tests may set ids on their own copy


def assert_valid_blocks(blocks: list[dict[str, Any]]) -> None:
    assert 0 < len(blocks) <= 50
    for block in blocks:
        Block.parse(block).validate_json()  # raises SlackObjectFormationError when invalid
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
    errors = [e.message for e in BLOCKS_VALIDATOR.iter_errors(blocks)]
    assert errors == []


# Figures ---------------------------------------------------------------------------------------------


def test_totals_count_requests_without_escalations_and_cost_with_them(w46: Digest) -> None:
    assert w46.totals == Totals(
        requests=18,  # 8 + 6 + 3 + 1: the escalation row is not a second request
        users=6,  # U1..U6; shadow/judge/eval rows have no user and do not count
        cost_usd=0.6796875,  # 0.5 + 0.09375 + 0.0625 + (0.0078125 + 0.015625 escalation)
        prev_requests=6,
        prev_cost_usd=0.28125,
        thumbs_up=1,
        thumbs_down=3,
        unknown_cost=1,
    )
    assert (w46.start, w46.end) == (at(2026, 11, 9, 0), at(2026, 11, 16, 0))
    assert w46.period == W46 and w46.timezone == "UTC" and not w46.empty


def test_skill_lines_sorted_by_cost_with_configured_tiers(w46: Digest) -> None:
    assert w46.skills == [
        SkillLine("label-email", "medium", 8, 2, 0.5, 0, 0, 4, 0.25),
        SkillLine("ask", "small", 6, 3, 0.09375, 1, 3, 2, 0.03125),
        SkillLine("summarize", "medium", 3, 3, 0.0625, 0, 0, 0, 0.0),
        SkillLine("triage-alert", "small", 1, 1, 0.0234375, 0, 0, 0, 0.0),
    ]
    assert w46.skills[1].up_rate == 0.25 and w46.skills[1].ratings == 4
    assert w46.skills[0].up_rate is None


def test_skill_line_tier_follows_an_admin_assignment_not_the_rows(make_engine: Any) -> None:
    engine = seeded_engine(make_engine)
    LedgerBuilder(engine.ledger).tier_assignment(at(2026, 11, 20), "summarize", "large", previous="medium")
    d = digest_mod.build_digest(EconomicsContext.of(engine), W46)
    assert {line.skill: line.tier for line in d.skills} == {
        "label-email": "medium",
        "ask": "small",
        "summarize": "large",
        "triage-alert": "small",
    }


def test_only_this_weeks_thumbs_down_comments_newest_first(w46: Digest) -> None:
    # "slow answer last week" (W45) and the 👎 without a comment are left out
    assert w46.comments == [("ask", "outdated travel policy"), ("ask", "wrong VPN steps")]


def test_side_spend_is_kept_apart_from_user_spend(w46: Digest) -> None:
    assert w46.side_spend == {"eval": 0.5, "judge": 0.125, "shadow": 0.25}
    assert w46.totals.cost_usd == 0.6796875  # none of the 0.875 side spend


def test_recommendations_are_the_review_at_the_end_of_the_week(scenario: Any, w46: Digest) -> None:
    assert w46.recommendations == review(EconomicsContext.of(scenario), W46_END)
    by_skill = {r.skill: (r.action, r.current_tier, r.target_tier) for r in w46.recommendations}
    assert by_skill == {
        "ask": ("upgrade", "small", "medium"),
        "hunt": ("keep", "small", None),
        "label-email": ("downgrade", "medium", "small"),
        "summarize": ("keep", "medium", None),
        "triage-alert": ("keep", "small", None),
        "write-report": ("keep", "small", None),
    }


def test_week_bounds_follow_the_configured_time_zone(make_engine: Any) -> None:
    engine = make_engine(**scenario_settings(timezone="America/New_York"))
    b = LedgerBuilder(engine.ledger)
    b.request(at(2026, 11, 16, 3), skill="ask", cost=0.25, user="U1")  # Sun 22:00 in New York → W46
    b.request(at(2026, 11, 9, 3), skill="ask", cost=0.5, user="U2")  # Sun 22:00 → W45
    b.request(at(2026, 11, 16, 6), skill="ask", cost=1.0, user="U3")  # Mon 01:00 → W47
    d = digest_mod.build_digest(EconomicsContext.of(engine), W46)
    assert (d.start, d.end) == week_bounds(W46, "America/New_York")
    assert (d.start, d.end) == (at(2026, 11, 9, 5), at(2026, 11, 16, 5))
    assert (d.totals.requests, d.totals.cost_usd, d.totals.users) == (1, 0.25, 1)
    assert (d.totals.prev_requests, d.totals.prev_cost_usd) == (1, 0.5)


# Renderers ------------------------------------------------------------------------------------------


def test_text(w46: Digest) -> None:
    text = digest_mod.to_text(w46)
    lines = text.splitlines()
    assert lines[0] == HEADLINE
    assert lines[1] == "Week: 2026-11-09 to 2026-11-15 (UTC)"  # Monday to Sunday, inclusive
    table = lines[lines.index("") + 1 :][:5]
    assert table == [
        "skill          tier     requests  users   cost USD         👍 rate",
        "label-email    medium          8      2     0.5000     no ratings",
        "ask            small           6      3     0.0938       25% of 4",
        "summarize      medium          3      3     0.0625     no ratings",
        "triage-alert   small           1      1     0.0234     no ratings",
    ]
    assert "1 request(s) have no known price; their cost is counted as $0." in lines
    assert "Not in user spend: eval $0.5000, judge $0.1250, shadow $0.2500." in lines
    assert f"  UPGRADE   ask small → medium: {ASK_REASON}" in lines
    assert f"  DOWNGRADE label-email medium → small: {LABEL_REASON}" in lines
    assert (
        "  KEEP      hunt (on small): no traffic in the window (28 days); no other tier this skill may use: "
        "nothing to sample" in lines
    )
    assert lines[-3:] == ["👎 comments:", "  [ask] outdated travel policy", "  [ask] wrong VPN steps"]
    assert "slow answer last week" not in text


def test_markdown(w46: Digest) -> None:
    md = digest_mod.to_markdown(w46)
    lines = md.splitlines()
    assert lines[0] == f"# {HEADLINE}"
    assert "| skill | tier | requests | users | cost (USD) | 👍 rate |" in lines
    assert "| label-email | medium | 8 | 2 | 0.5000 | no ratings |" in lines
    assert "| ask | small | 6 | 3 | 0.0938 | 25% of 4 |" in lines
    assert "| triage-alert | small | 1 | 1 | 0.0234 | no ratings |" in lines
    assert "_1 request(s) have no known price; their cost is counted as $0._" in lines
    assert "_Not in user spend: eval $0.5000, judge $0.1250, shadow $0.2500._" in lines
    assert f"- **downgrade** `label-email` medium → small: {LABEL_REASON}" in lines
    assert f"- **keep** `summarize` (stays on medium): {SUMMARIZE_REASON}" in lines
    assert lines[-4:] == ["## 👎 comments", "", "- `ask`: outdated travel policy", "- `ask`: wrong VPN steps"]


def test_json_numbers(w46: Digest) -> None:
    data = json.loads(digest_mod.to_json(w46))
    assert data["period"] == W46 and data["empty"] is False and data["timezone"] == "UTC"
    assert data["start"] == "2026-11-09T00:00:00+00:00" and data["end"] == "2026-11-16T00:00:00+00:00"
    assert data["totals"] == W46_TOTALS
    assert data["skills"][1] == {
        "skill": "ask",
        "tier": "small",
        "requests": 6,
        "users": 3,
        "cost_usd": 0.09375,
        "thumbs_up": 1,
        "thumbs_down": 3,
        "prev_requests": 2,
        "prev_cost_usd": 0.03125,
        "up_rate": 0.25,
    }
    recs = {r["skill"]: r for r in data["recommendations"]}
    assert recs["label-email"]["monthly_delta_usd"] == -11.25
    assert recs["label-email"]["evidence"]["projected_monthly_usd"] == -11.25
    assert recs["ask"]["monthly_delta_usd"] == 0.9375
    assert recs["ask"]["reason"] == ASK_REASON
    assert data["thumbs_down_comments"] == [
        {"skill": "ask", "comment": "outdated travel policy"},
        {"skill": "ask", "comment": "wrong VPN steps"},
    ]
    assert data["side_spend"] == {"eval": 0.5, "judge": 0.125, "shadow": 0.25}


def test_blocks_validate_and_buttons_carry_the_recommendation_id(w46: Digest) -> None:
    w46.recommendation_ids = {"label-email": 41, "ask": 42}
    blocks = digest_blocks.to_blocks(w46)
    assert_valid_blocks(blocks)
    assert [b["type"] for b in blocks] == [
        "header", "section", "section", "context", "divider",
        "section", "actions",  # ask: upgrade
        "section",  # hunt
        "section", "actions",  # label-email: downgrade
        "section", "section", "section",  # summarize, triage-alert, write-report
        "divider", "section",  # 👎 comments
    ]  # fmt: skip
    assert blocks[1]["text"]["text"] == HEADLINE
    assert blocks[2]["text"]["text"].splitlines()[0] == (
        "*label-email* · medium · 8 req · 2 users · $0.50 · 👍 no ratings"
    )
    actions = {b["block_id"]: b for b in blocks if b["type"] == "actions"}
    assert set(actions) == {"rec_41", "rec_42"}
    buttons = [(e["action_id"], e["value"]) for e in actions["rec_41"]["elements"]]
    assert buttons == [("tierwise_rec_apply", "41"), ("tierwise_rec_dismiss", "41")]
    assert blocks[8]["text"]["text"] == f"⬇️ *downgrade* `label-email` medium → small\n{LABEL_REASON}"


def test_blocks_without_stored_ids_have_no_buttons(w46: Digest) -> None:
    blocks = digest_blocks.to_blocks(w46)
    assert_valid_blocks(blocks)
    assert [b for b in blocks if b["type"] == "actions"] == []


def big_digest() -> Digest:
    lines = [
        SkillLine(f"skill-{i:02d}-" + "x" * 40, "medium", 10_000 + i, 300, 1234.5, 7, 3, 9, 1.0)
        for i in range(70)
    ]
    recs = [
        TierRecommendation(f"skill-{i:02d}", "downgrade", "medium", "small", "r" * 4000, {}, -10.0)
        for i in range(30)
    ]
    start, end = week_bounds(W46)
    return Digest(
        period=W46,
        start=start,
        end=end,
        timezone="UTC",
        totals=Totals(700_000, 300, 86_415.0, 1, 1.0, 490, 210, 12),
        skills=lines,
        recommendations=recs,
        comments=[("skill-01", "c" * 3000)] * 40,
        side_spend={"shadow": 1.0, "judge": 2.0, "eval": 3.0},
        recommendation_ids={f"skill-{i:02d}": i + 1 for i in range(30)},
    )


def test_blocks_stay_within_slack_limits_for_a_big_week() -> None:
    blocks = digest_blocks.to_blocks(big_digest())
    assert_valid_blocks(blocks)


def test_chart_is_a_png_for_a_week_with_traffic(w46: Digest) -> None:
    png = digest_mod.chart_png(w46)
    assert png is not None and png.startswith(PNG_MAGIC) and len(png) > 1000


@pytest.mark.parametrize("period", ["2026-W40", "2026-W47"])  # W47 follows a busy week
def test_a_week_without_traffic_says_so(scenario: Any, period: str) -> None:
    d = digest_mod.build_digest(EconomicsContext.of(scenario), period)
    assert d.empty and d.skills == [] and d.comments == []
    assert (d.totals.requests, d.totals.users, d.totals.cost_usd) == (0, 0, 0.0)
    headline = f"Tierwise digest {period}: no traffic this week."
    text = digest_mod.to_text(d)
    assert text.splitlines()[0] == headline
    assert not [line for line in text.splitlines() if line.startswith("skill ")]  # no empty table
    assert digest_mod.to_markdown(d).splitlines()[0] == f"# {headline}"
    data = json.loads(digest_mod.to_json(d))
    assert data["empty"] is True and data["totals"]["requests"] == 0 and data["skills"] == []
    blocks = digest_blocks.to_blocks(d)
    assert_valid_blocks(blocks)
    assert blocks[1]["text"]["text"] == headline
    assert digest_mod.chart_png(d) is None


def test_an_empty_ledger_builds_a_digest(make_engine: Any) -> None:
    d = digest_mod.build_digest(EconomicsContext.of(make_engine()), W46)
    assert d.empty and d.side_spend == {} and d.totals.prev_requests == 0
    assert {r.action for r in d.recommendations} == {"keep"}
    assert digest_mod.headline(d) == "Tierwise digest 2026-W46: no traffic this week."
    assert digest_mod.chart_png(d) is None


def test_user_comments_cannot_ping_the_admin_channel(make_engine: Any) -> None:
    """A 👎 comment is user text: in mrkdwn it must be escaped (`&`, `<`, `>`), or `<!channel>` pings."""
    engine = make_engine(**scenario_settings())
    b = LedgerBuilder(engine.ledger)
    row = b.request(at(2026, 11, 10), skill="ask", cost=0.25, user="U1")
    b.feedback(row, user="U1", score=-1, comment="<!channel> wrong & useless <@U0ADMIN>")
    blocks = digest_blocks.to_blocks(digest_mod.build_digest(EconomicsContext.of(engine), W46))
    comments = blocks[-1]["text"]["text"]
    assert "<!channel>" not in comments and "<@U0ADMIN>" not in comments
    assert "&lt;!channel&gt; wrong &amp; useless &lt;@U0ADMIN&gt;" in comments


def test_the_week_line_shows_the_weeks_dates_in_the_configured_zone(make_engine: Any) -> None:
    """W46 in Auckland is Mon 2026-11-09 to Mon 2026-11-16 local time, not the UTC dates of those instants."""
    engine = make_engine(**scenario_settings(timezone="Pacific/Auckland"))
    d = digest_mod.build_digest(EconomicsContext.of(engine), W46)
    assert digest_mod.to_text(d).splitlines()[1] == "Week: 2026-11-09 to 2026-11-15 (Pacific/Auckland)"
    assert "Week: 2026-11-09 to 2026-11-15 (Pacific/Auckland)" in digest_mod.to_markdown(d)


# Posting -------------------------------------------------------------------------------------------


@pytest.fixture
def strict_slack() -> Any:
    """The fake Slack, validating message blocks against the Block Kit schema like Slack does."""
    with FakeSlack(validate_blocks=True) as slack:
        yield slack


def test_post_digest_sends_blocks_with_fallback_and_uploads_the_chart(strict_slack: Any, w46: Digest) -> None:
    w46.recommendation_ids = {"label-email": 7}
    png = digest_mod.chart_png(w46)
    posted = digest_blocks.post_digest(strict_slack.web_client(), "C_ADMIN", w46)

    (message,) = strict_slack.calls_to("chat.postMessage")
    assert message.ok
    assert message.params["channel"] == "C_ADMIN"
    assert message.params["text"] == HEADLINE
    assert message.json_field("blocks") == digest_blocks.to_blocks(w46)

    (get_url,) = strict_slack.calls_to("files.getUploadURLExternal")
    file_id = get_url.response["file_id"]
    (upload,) = strict_slack.calls_to(f"upload:{file_id}")
    (complete,) = strict_slack.calls_to("files.completeUploadExternal")
    assert get_url.ok and upload.ok and complete.ok
    assert get_url.params["filename"] == "tierwise-2026-W46.png"
    assert int(get_url.params["length"]) == len(png)
    assert strict_slack.uploads[file_id] == png and png.startswith(PNG_MAGIC)
    assert complete.json_field("files") == [
        {"id": file_id, "title": "Tierwise 2026-W46: cost and thumbs-up rate per skill"}
    ]
    assert complete.params["channel_id"] == "C_ADMIN"
    assert complete.params["thread_ts"] == message.response["ts"]
    order = [c.method for c in strict_slack.calls]
    assert order == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        f"upload:{file_id}",
        "files.completeUploadExternal",
    ]
    assert posted == {"ts": message.response["ts"], "channel": "C_ADMIN", "file": file_id}


def test_post_an_empty_week_uploads_no_chart(strict_slack: Any, make_engine: Any) -> None:
    d = digest_mod.build_digest(EconomicsContext.of(make_engine()), W46)
    posted = digest_blocks.post_digest(strict_slack.web_client(), "C_ADMIN", d)
    assert [c.method for c in strict_slack.calls] == ["chat.postMessage"]
    assert strict_slack.calls[0].params["text"] == "Tierwise digest 2026-W46: no traffic this week."
    assert strict_slack.uploads == {}
    assert posted["file"] is None and posted["channel"] == "C_ADMIN"
