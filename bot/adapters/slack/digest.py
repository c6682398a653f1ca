"""The weekly digest in Block Kit, and its post to the admin channel (the digest itself is built in
bot.economics.digest; this is only its Slack rendering)."""

from __future__ import annotations

from typing import Any

from bot.adapters.slack.ids import REC_APPLY, REC_DISMISS, rec_block_id
from bot.adapters.slack.mrkdwn import escape
from bot.core.rec_format import format_recommendation
from bot.economics import digest
from bot.economics.digest import Digest


def to_blocks(d: Digest) -> list[dict[str, Any]]:
    """Block Kit for the admin channel; Apply/Dismiss buttons carry the stored recommendation id."""
    from slack_sdk.models.blocks import (
        ActionsBlock,
        ButtonElement,
        ContextBlock,
        DividerBlock,
        HeaderBlock,
        MarkdownTextObject,
        SectionBlock,
    )

    def clip(text: str, limit: int = 2900) -> str:
        return text if len(text) <= limit else text[: limit - 1] + "…"

    blocks: list[Any] = [HeaderBlock(text=clip(f"Tierwise weekly digest {d.period}", 150))]
    blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(digest.headline(d)))))
    if not d.empty:
        rows = [
            f"*{s.skill}* · {s.tier} · {s.requests:,} req · {s.users} users · ${s.cost_usd:,.2f} · 👍 {digest.up_rate_text(s)}"
            for s in d.skills
        ]
        for i in range(0, len(rows), 20):
            blocks.append(SectionBlock(text=MarkdownTextObject(text=clip("\n".join(rows[i : i + 20])))))
    notes = digest.notes(d)
    if notes:
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=clip(escape(n), 2900)) for n in notes[:10]])
        )
    blocks.append(DividerBlock())
    for rec in d.recommendations[:12]:
        text = format_recommendation(rec, "slack_digest", escape=escape)
        checked = digest.verify_line(rec)
        if checked:
            text += f"\n_{escape(checked)}_"
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(text))))
        rec_id = d.recommendation_ids.get(rec.skill)
        if rec.action in ("downgrade", "upgrade") and rec_id is not None:
            blocks.append(
                ActionsBlock(
                    block_id=rec_block_id(rec_id),
                    elements=[
                        ButtonElement(text="Apply", action_id=REC_APPLY, value=str(rec_id), style="primary"),
                        ButtonElement(text="Dismiss", action_id=REC_DISMISS, value=str(rec_id)),
                    ],
                )
            )
    if d.comments:
        blocks.append(DividerBlock())
        # Users wrote these: escaped, so "<!channel>" in a comment cannot ping the admin channel.
        text = "*👎 comments*\n" + "\n".join(f"• `{s}`: {escape(c)}" for s, c in d.comments[:15])
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(text))))
    return [b.to_dict() for b in blocks[:50]]


def post_digest(client: Any, channel: str, d: Digest) -> dict[str, Any]:
    """Post blocks (with a plain-text fallback) and upload the chart via files_upload_v2."""
    response = client.chat_postMessage(channel=channel, text=digest.headline(d), blocks=to_blocks(d))
    posted: dict[str, Any] = {
        "ts": response.get("ts"),
        "channel": response.get("channel", channel),
        "file": None,
    }
    png = digest.chart_png(d)
    if png is not None:
        upload = client.files_upload_v2(
            channel=posted["channel"],
            content=png,
            filename=f"tierwise-{d.period}.png",
            title=f"Tierwise {d.period}: cost and thumbs-up rate per skill",
            thread_ts=posted["ts"],
        )
        files = upload.get("files") or [upload.get("file") or {}]
        posted["file"] = files[0].get("id") if files else None
    return posted
