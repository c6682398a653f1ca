"""`tierwise …`: the command line. Heavy modules (litellm, bm25s, slack, matplotlib) are imported
inside the command that needs them, so `tierwise --help` answers at once."""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from bot.app import build_engine
from bot.config import ConfigError

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.pipeline.engine import Engine

app = typer.Typer(
    name="tierwise",
    help="Tierwise: a general model at the right tier, plus curated context. Slack chat-ops with evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
tier_app = typer.Typer(help="See and change which tier each skill runs on.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
cost_app = typer.Typer(help="Costs in the ledger.", no_args_is_help=True)
privacy_app = typer.Typer(
    help="Data-subject requests: export or erase one person's data.", no_args_is_help=True
)
app.add_typer(tier_app, name="tier")
app.add_typer(privacy_app, name="privacy")
app.add_typer(db_app, name="db")
app.add_typer(cost_app, name="cost")


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"tierwise: {message}", err=True)
    raise typer.Exit(code)


def settings() -> Settings:
    from bot.config import load_settings

    return load_settings()


def engine(announce: bool = True, context_warnings: bool = False) -> Engine:
    from bot.observability.logs import setup_logging
    from bot.pipeline.engine import embedded_notice

    conf = settings()
    setup_logging(conf.log_level if conf.log_level != "INFO" else "WARNING", conf)
    eng = build_engine(conf)
    if announce:
        notice = embedded_notice(conf)
        if notice:
            typer.echo(notice, err=True)
    for problem in [*eng.registry.problems]:
        typer.echo(f"warning: skill skipped: {problem}", err=True)
    if context_warnings:  # long-running sessions: say once what a tier's budget leaves out
        for warning in eng.context_warnings():
            typer.echo(f"warning: {warning}", err=True)
    return eng


def console() -> Any:
    from rich.console import Console

    # Piped output gets a roomy width instead of rich's 80 columns, so tables stay readable in logs.
    return Console(width=None if sys.stdout.isatty() else 160)


def parse_since(value: str) -> datetime:
    """`7d`, `24h`, `2w`, `30m` or an ISO date/time (UTC)."""
    from bot.ledger.models import utcnow

    match = re.fullmatch(r"(\d+)\s*([mhdw])", value.strip())
    if match:
        n, unit = int(match.group(1)), match.group(2)
        delta = {
            "m": timedelta(minutes=n),
            "h": timedelta(hours=n),
            "d": timedelta(days=n),
            "w": timedelta(weeks=n),
        }
        return utcnow() - delta[unit]
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--since {value!r}: use a duration such as 7d, 24h, 2w, or a date such as 2026-11-01")
    from datetime import UTC

    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------


@app.command()
def ask(
    text: Annotated[list[str] | None, typer.Argument(help="Your question or task.")] = None,
    skill: Annotated[
        str | None, typer.Option("--skill", "-s", help="Use this skill (skips routing).")
    ] = None,
    tier: Annotated[
        str | None, typer.Option("--tier", "-t", help="Run on this tier (operator override).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")] = False,
) -> None:
    """Ask Tierwise once and print the answer with a footer (skill, tier, model, tokens, cost, latency, id)."""
    words = " ".join(text or []).strip()
    if not words and not sys.stdin.isatty():
        words = sys.stdin.read().strip()
    if not words:
        fail('nothing to ask. Usage: tierwise ask [--skill S] [--tier T] "How do I get VPN access?"')
    eng = engine(announce=False)  # the built-in model's label goes under the answer instead
    if skill and eng.registry.get(skill) is None and eng.registry.by_command(skill) is None:
        fail(f"unknown skill {skill!r}. Valid skills: {', '.join(eng.registry.names())}")
    if tier and tier not in eng.settings.tiers:
        fail(f"unknown tier {tier!r}. Valid tiers: {', '.join(eng.settings.tiers)}")
    from bot.core.types import Request

    request = Request(text=words, source="cli", user="cli", skill=skill, tier=tier, explicit_via="--skill")
    shown: list[str] = []
    if not as_json:  # print tokens as they come; progress steps go to stderr

        def show(delta: str) -> None:
            shown.append(delta)
            typer.echo(delta, nl=False)

        request.on_delta = show
        request.on_step = lambda step: typer.echo(f"… {step}", err=True)
    reply = eng.handle(request)
    from dataclasses import asdict

    from bot.context.grounding import EMBEDDED_LABEL, sources_text

    if as_json:
        data = {**reply.__dict__, "citations": [asdict(c) for c in reply.citations]}
        typer.echo(json.dumps({**data, "footer": reply.footer()}, default=str, indent=2))
    else:
        if shown:
            typer.echo("")  # end the streamed line
        if not (shown and reply.structured is None and reply.status in ("ok", "stopped")):
            typer.echo(reply.text)  # not streamed (structured fields, a refusal): print it now
        if reply.ok and reply.citations:
            typer.echo(sources_text(reply.citations))
        if reply.ok and reply.embedded:
            typer.secho(f"ⓘ {EMBEDDED_LABEL}", dim=True)
        for note in reply.notes:
            typer.echo(f"note: {note}", err=True)
        if reply.request_id:
            tokens = f"{reply.prompt_tokens}→{reply.completion_tokens} tokens"
            typer.secho(
                f"— {reply.skill} · {reply.tier} · {reply.model} · {tokens} · "
                f"{f'${reply.cost_usd:.6f}' if reply.cost_known else '$?'} · {reply.latency_s:.2f}s · "
                f"request {reply.request_id}",
                dim=True,
            )
    if reply.status == "rejected":
        raise typer.Exit(2)
    if reply.status not in ("ok",):
        raise typer.Exit(1)


@app.command()
def shell() -> None:
    """An interactive console: free text is routed, /skill text picks a skill, + / - rates the last answer."""
    from bot.adapters.shell import Shell

    def echo(delta: str) -> None:
        sys.stdout.write(delta)
        sys.stdout.flush()

    Shell(engine(context_warnings=True), echo=echo).run()


@app.command("skills")
def list_skills(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the loaded skills with their commands, tiers and packs."""
    eng = engine(announce=False)
    rows: list[dict[str, Any]] = []
    for s in eng.registry:
        tier, why = eng.configured_tier(s)
        rows.append(
            {
                "name": s.name,
                "command": s.slash,
                "tier": tier,
                "tier_source": why,
                "packs": list(s.packs),
                "structured": s.structured,
                "sensitive": eng.is_sensitive(s),
                "description": s.description,
            }
        )
    if as_json:
        typer.echo(
            json.dumps({"skills": rows, "problems": [str(p) for p in eng.registry.problems]}, indent=2)
        )
        return
    from rich.table import Table

    table = Table(title="Skills")
    for col in ("skill", "command", "tier", "packs", "output", "description"):
        table.add_column(col, overflow="fold", no_wrap=col != "description")
    for r in rows:
        table.add_row(
            r["name"],
            r["command"],
            f"{r['tier']} ({r['tier_source']})",
            ", ".join(r["packs"]) or "-",
            "structured" + (" · sensitive" if r["sensitive"] else "")
            if r["structured"]
            else ("sensitive" if r["sensitive"] else "text"),
            r["description"],
        )
    console().print(table)


@app.command("packs")
def list_packs(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the context packs with document counts and content hashes (their versions)."""
    from bot.context.packs import builtin_packs_dir, load_packs
    from bot.core.skills import discover_skills, plugin_pack_dirs

    conf = settings()
    found, _ = discover_skills(conf.skill_dirs)
    packs, problems = load_packs([builtin_packs_dir(), *conf.pack_dirs, *plugin_pack_dirs(found)])
    rows: list[dict[str, Any]] = [
        {
            "name": p.name,
            "documents": len(p.documents),
            "hash": p.hash,
            "sensitive": p.sensitive,
            "channels": list(p.channels),
            "always_include": list(p.always_include),
            "owner": p.owner,
            "path": str(p.root),
        }
        for p in packs.values()
    ]
    for problem in problems:
        typer.echo(f"warning: pack skipped: {problem}", err=True)
    from bot.context.pack_data import pack_data_problems

    data_problems = pack_data_problems(packs)  # what the skills' checks read (catalogs, samples, rules)
    for data_problem in data_problems:
        typer.echo(f"warning: checks will not run: {data_problem}", err=True)
    if as_json:
        all_problems = [str(p) for p in problems] + data_problems
        typer.echo(json.dumps({"packs": rows, "problems": all_problems}, indent=2))
        return
    from rich.table import Table

    table = Table(title="Context packs")
    for col in ("pack", "docs", "hash", "sensitive", "channels", "owner"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"],
            str(r["documents"]),
            r["hash"],
            "yes" if r["sensitive"] else "no",
            ", ".join(r["channels"]) or "any",
            r["owner"],
        )
    console().print(table)


@app.command()
def usage(
    since: Annotated[str, typer.Option(help="Window: 7d, 24h, 2w, or a date.")] = "7d",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    limit: Annotated[int, typer.Option(help="How many recent requests to list in --json.")] = 50,
) -> None:
    """Per skill: requests, tokens, cost, latency, 👍/👎; verified-pass rate and time to first token per
    skill and tier."""
    from bot.ledger.models import utcnow
    from bot.ledger.queries import ttft_figures
    from bot.ledger.store import Ledger
    from bot.ledger.verification import verified_rates

    start = parse_since(since)
    ledger = Ledger(settings().effective_database_url)
    rows = ledger.usage(start)
    checks = verified_rates(ledger, start)
    ttft = ttft_figures(ledger, start, utcnow() + timedelta(seconds=1))
    if as_json:
        recent = [
            {
                "id": r.id,
                "created_at": r.created_at.isoformat(),
                "source": r.source,
                "user": r.user_id,
                "skill": r.skill,
                "tier": r.tier,
                "model_requested": r.model_requested,
                "model_used": r.model_used,
                "pack_hash": r.pack_hash,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "cached_tokens": r.cached_tokens,
                "cost_usd": r.cost_usd,
                "cost_known": r.cost_known,
                "price_source": r.price_source,
                "latency_ms": r.latency_ms,
                "ttft_ms": r.ttft_ms,
                "visible_ttft_ms": r.visible_ttft_ms,
                "delivery": r.delivery,
                "status": r.status,
                "escalated_from": r.escalated_from,
                "route_reason": r.route_reason,
                "output_mode": r.output_mode,
                "verify_status": r.verify_status,
                "feedback": [{"user": f.user_id, "score": f.score, "comment": f.comment} for f in fb],
            }
            for r in ledger.requests_since(start, limit=limit)
            for fb in [ledger.feedback_for(r.id)]
        ]
        typer.echo(
            json.dumps(
                {
                    "since": start.isoformat(),
                    "skills": [r.as_dict() for r in rows],
                    "verification": [c.as_dict() for c in checks],
                    "ttft": [t.__dict__ for t in ttft],
                    "requests": recent,
                },
                indent=2,
            )
        )
        return
    if not rows:
        typer.echo(f"No requests since {start:%Y-%m-%d %H:%M} UTC.")
        return
    from rich.table import Table

    table = Table(title=f"Usage since {start:%Y-%m-%d %H:%M} UTC")
    for col in ("skill", "requests", "tokens in/out", "cost (USD)", "mean s", "p95 s", "👍", "👎"):
        table.add_column(col, justify="right" if col != "skill" else "left")
    for r in rows:
        cost = f"{r.cost_usd:.4f}" + (f" (+{r.unknown_cost} unpriced)" if r.unknown_cost else "")
        table.add_row(
            r.skill,
            str(r.requests),
            f"{r.prompt_tokens:,}/{r.completion_tokens:,}",
            cost,
            f"{r.mean_latency_ms / 1000:.2f}",
            f"{r.p95_latency_ms / 1000:.2f}",
            str(r.thumbs_up),
            str(r.thumbs_down),
        )
    console().print(table)
    if checks:
        console().print(verification_table(checks))
    if ttft:

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:,.0f}"

        first = Table(title="Time to first token (ms): the model's, and the first text visible to the user")
        for col in ("skill", "tier", "model p50", "model p95", "visible p50", "visible p95"):
            first.add_column(col, justify="left" if col in ("skill", "tier") else "right")
        for t in ttft:
            first.add_row(
                t.skill,
                t.tier,
                ms(t.model_p50_ms),
                ms(t.model_p95_ms),
                ms(t.visible_p50_ms),
                ms(t.visible_p95_ms),
            )
        console().print(first)


def verification_table(checks: list[Any]) -> Any:
    """Verified-pass rate per skill and tier with its 95 % interval (bot.ledger.verification)."""
    from rich.table import Table

    table = Table(title="Verified answers (skill checks): pass rate per skill and tier")
    for col in ("skill", "tier", "passed", "failed", "not run", "pass rate", "95% interval"):
        table.add_column(col, justify="left" if col in ("skill", "tier") else "right")
    for c in checks:
        low, high = c.interval
        rate = f"{c.rate:.0%}" if c.rate is not None else "-"
        span = f"{low:.0%}–{high:.0%}" if c.checked else "-"
        table.add_row(c.skill, c.tier, str(c.passed), str(c.failed), str(c.not_run), rate, span)
    return table


@app.command(context_settings={"ignore_unknown_options": True})  # so "-1" is a score, not an option
def feedback(
    request_id: Annotated[str, typer.Argument(help="The request id from the answer's footer.")],
    score: Annotated[str, typer.Argument(help="+1 or -1")],
    comment: Annotated[str | None, typer.Option(help="What was good or wrong.")] = None,
    user: Annotated[str, typer.Option(help="Who is rating.")] = "cli",
) -> None:
    """Rate an answer: one rating per user per request; rating again updates it."""
    from bot.ledger.store import Ledger, UnknownRequest

    values = {"+1": 1, "1": 1, "+": 1, "up": 1, "-1": -1, "-": -1, "down": -1}
    if score not in values:
        fail(f"score {score!r}: use +1 or -1")
    ledger = Ledger(settings().effective_database_url)
    try:
        _, created = ledger.add_feedback(request_id, user, values[score], comment, source="cli")
    except UnknownRequest:
        fail(f"no request with id {request_id!r}")
    typer.echo(f"{'Recorded' if created else 'Updated'} {score} for request {request_id}.")


@tier_app.command("set")
def tier_set(
    skill: Annotated[str, typer.Argument()],
    tier: Annotated[str, typer.Argument()],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (kept in the history).")],
    by: Annotated[str, typer.Option(help="Who is changing it.")] = "cli",
) -> None:
    """Assign SKILL to TIER (takes effect at once; history kept)."""
    from bot.economics.context import EconomicsContext
    from bot.economics.tiers import TierChangeError, set_tier

    eng = engine(announce=False)
    try:
        row = set_tier(EconomicsContext.of(eng), skill, tier, by=by, reason=reason, source="cli")
    except TierChangeError as exc:
        fail(str(exc))
    typer.echo(f"{row.skill}: {row.previous_tier or '-'} → {row.tier} (by {row.assigned_by}: {row.reason})")


@tier_app.command("history")
def tier_history(skill: Annotated[str | None, typer.Argument()] = None) -> None:
    """Show tier changes, newest first."""
    from bot.ledger.store import Ledger

    rows = Ledger(settings().effective_database_url).tier_history(skill)
    if not rows:
        typer.echo("No tier changes recorded." if not skill else f"No tier changes recorded for {skill}.")
        return
    from rich.table import Table

    table = Table(title="Tier history")
    for col in ("when (UTC)", "skill", "from", "to", "by", "source", "reason"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            f"{r.created_at:%Y-%m-%d %H:%M}",
            r.skill,
            r.previous_tier or "-",
            r.tier,
            r.assigned_by,
            r.source,
            r.reason,
        )
    console().print(table)


@app.command("eval")
def run_evals(
    skill: Annotated[
        list[str] | None, typer.Option("--skill", "-s", help="Skill(s) to evaluate (default: all).")
    ] = None,
    tiers: Annotated[str | None, typer.Option(help="Comma-separated tiers (default: all).")] = None,
    judge: Annotated[str | None, typer.Option(help="Tier that judges open-ended answers.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N cases of each set.")] = None,
    file: Annotated[
        str | None, typer.Option(help="A JSONL golden set to use instead of evals/<skill>.jsonl.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run golden sets on tiers: pass rate, critical failures, key-fact recall and right-source rate
    (deterministic, for cases that list them), mean cost per case, p50 latency."""
    from pathlib import Path

    from bot.evals.runner import golden_set_path, load_cases, run_eval

    eng = engine(announce=not as_json)
    names = skill or eng.registry.names()
    unknown = [n for n in names if eng.registry.get(n) is None]
    if unknown:
        fail(f"unknown skill {', '.join(unknown)}. Valid skills: {', '.join(eng.registry.names())}")
    tier_list = [t.strip() for t in tiers.split(",") if t.strip()] if tiers else eng.tiers
    bad = [t for t in tier_list if t not in eng.settings.tiers]
    if bad or (judge and judge not in eng.settings.tiers):
        fail(f"unknown tier {', '.join(bad or [str(judge)])}. Valid tiers: {', '.join(eng.settings.tiers)}")
    if file and len(names) != 1:
        fail("--file needs exactly one --skill")
    plan = []
    for name in names:
        path = Path(file) if file else golden_set_path(eng.registry.skills[name])
        if not path.is_file():
            typer.echo(f"warning: no golden set for {name} ({path})", err=True)
            continue
        cases, problems = load_cases(path)
        for problem in problems:
            typer.echo(f"warning: {problem}", err=True)
        allowed = eng.ladder.allowed(eng.is_sensitive(eng.registry.skills[name]))
        runnable = [t for t in tier_list if t in allowed]
        for skipped in sorted(set(tier_list) - set(runnable), key=tier_list.index):
            typer.echo(f"warning: {name} is sensitive: tier {skipped} is external, skipped", err=True)
        if runnable:
            plan.append((name, runnable, cases[:limit] if limit else cases))
    if not plan:
        fail("nothing to evaluate")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    summaries = []
    total = sum(len(cases) * len(tiers_) for _, tiers_, cases in plan)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console(),
        transient=True,
        disable=as_json,
    ) as progress:
        task = progress.add_task("evaluating", total=total)
        for name, tiers_, cases in plan:

            def tick(tier: str, case: object, name: str = name) -> None:
                progress.update(task, advance=1, description=f"{name} on {tier}")

            summaries.extend(run_eval(eng, name, tiers_, cases, judge_tier=judge, on_case=tick))
    if as_json:
        typer.echo(json.dumps({"runs": [s.as_dict() for s in summaries]}, indent=2))
        return
    from rich.table import Table

    for name in dict.fromkeys(s.skill for s in summaries):
        table = Table(title=f"eval: {name}")
        for col in (
            "tier",
            "model",
            "cases",
            "pass rate",
            "critical failures",
            "key facts",
            "right source",
            "mean cost/case",
            "p50 latency",
            "run",
        ):
            table.add_column(col, justify="left" if col in ("tier", "model", "run") else "right")
        for s in (x for x in summaries if x.skill == name):
            table.add_row(
                s.tier,
                s.model,
                str(s.cases),
                f"{s.pass_rate:.0%} ({s.passed}/{s.cases})",
                str(s.critical_failures),
                "-" if s.key_fact_recall is None else f"{s.key_fact_recall:.0%}",
                "-" if s.right_source_rate is None else f"{s.right_source_rate:.0%}",
                f"${s.mean_cost_usd:.6f}",
                f"{s.p50_latency_ms / 1000:.2f}s",
                s.run_id,
            )
        console().print(table)


@app.command()
def review(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The tier review: one recommendation per skill (downgrade, upgrade, keep, fix) with its evidence."""
    from bot.core.rec_format import format_recommendation
    from bot.economics.context import EconomicsContext
    from bot.economics.tier_review import as_json as recs_json
    from bot.economics.tier_review import review as run_review

    recs = run_review(EconomicsContext.of(engine(announce=False)))
    if as_json:
        typer.echo(json.dumps({"recommendations": recs_json(recs)}, indent=2, default=str))
        return
    from bot.economics.digest import verify_line

    for rec in recs:
        typer.echo(format_recommendation(rec))
        checked = verify_line(rec)
        if checked:
            typer.echo(f"  {checked}")


@app.command("value", context_settings={"ignore_unknown_options": True})  # "-2" is a value, not an option
def value(
    skill: Annotated[str | None, typer.Argument(help="The skill (omit to list every skill's value).")] = None,
    usd: Annotated[str | None, typer.Argument(help="USD a good answer is worth, or `default`.")] = None,
    by: Annotated[str, typer.Option(help="Who is changing it.")] = "cli",
) -> None:
    """What a good answer of a skill is worth (value_per_good_answer_usd): the review prices moves with it."""
    from bot.economics import skill_values
    from bot.economics.context import EconomicsContext

    eng = engine(announce=False)
    ctx = EconomicsContext.of(eng)
    if skill is None or usd is None:
        if skill is not None and eng.registry.get(skill) is None:
            fail(f"unknown skill {skill!r}. Valid skills: {', '.join(eng.registry.names())}")
        names = [skill] if skill else [s.name for s in eng.registry]
        values = skill_values.overrides(eng.ledger)
        for name in names:
            typer.echo(f"{name}: {skill_values.describe(skill_values.effective(ctx, name, values))}")
        return
    try:
        before, after = skill_values.set_value(ctx, skill, usd, by=by, source="cli")
    except skill_values.ValueChangeError as exc:
        fail(str(exc))
    typer.echo(
        f"{skill}: value of a good answer {skill_values.describe(before)} → {skill_values.describe(after)}"
    )


@app.command()
def digest(
    week: Annotated[
        str | None, typer.Option(help="ISO week, e.g. 2026-W47 (default: last complete week).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="text, markdown, json or blocks.")] = "text",
    post: Annotated[bool, typer.Option("--post", help="Post it to the admin channel in Slack.")] = False,
) -> None:
    """The weekly usage digest: totals vs last week, per-skill table, recommendations, 👎 comments."""
    from bot.adapters.slack import digest as digest_blocks
    from bot.core.periods import last_complete_week, parse_week
    from bot.economics import digest as digest_mod
    from bot.economics.context import EconomicsContext
    from bot.ledger.models import utcnow

    if fmt not in ("text", "markdown", "json", "blocks"):
        fail(f"--format {fmt!r}: use text, markdown, json or blocks")
    eng = engine(announce=False)
    period = week or last_complete_week(utcnow(), eng.settings.timezone)
    if post:
        from bot.adapters.slack.client import make_client

        try:
            parse_week(period)  # a bad week fails first, with or without --post
        except ValueError as exc:
            fail(f"--week {period!r}: {exc}")
        channel = eng.settings.admin_channel
        if not channel:
            fail("--post needs TIERWISE_ADMIN_CHANNEL (the channel id to post the digest to)")
        if eng.settings.slack_bot_token is None:
            fail("--post needs SLACK_BOT_TOKEN")
        client = make_client(eng.settings)
        posted = digest_mod.publish_digest(
            EconomicsContext.of(eng), period, lambda d: digest_blocks.post_digest(client, channel, d)
        ).detail
        typer.echo(
            f"Posted digest {period} to {posted['channel']} (ts {posted['ts']}, chart {posted['file'] or 'none'})."
        )
        return
    try:
        d = digest_mod.build_digest(EconomicsContext.of(eng), period)
    except ValueError as exc:
        fail(f"--week {period!r}: {exc}")
    render = {
        "text": digest_mod.to_text,
        "markdown": digest_mod.to_markdown,
        "json": digest_mod.to_json,
        "blocks": lambda x: json.dumps(digest_blocks.to_blocks(x), indent=2),
    }[fmt]
    typer.echo(render(d))


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="HTTP port (ignored in Socket Mode).")] = 3000,
    host: Annotated[str, typer.Option(help="HTTP bind address.")] = "0.0.0.0",
) -> None:
    """Run the Slack bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP at /slack/events (+ /healthz)."""
    from bot.adapters.slack.server import serve as run
    from bot.observability.logs import setup_logging

    eng = engine(context_warnings=True)
    setup_logging(eng.settings.log_level, eng.settings)  # a server logs at its level (INFO by default)
    run(eng, host=host, port=port)


@app.command()
def doctor() -> None:
    """Check this installation: database, tiers (a one-token ping each), Slack, the embedded model,
    the digest's next run. One line per check; exits 1 when one fails."""
    from bot.adapters.doctor import FAIL, run
    from bot.observability.logs import setup_logging

    conf = settings()
    setup_logging("ERROR")
    failed = False
    for check in run(conf):
        typer.echo(check.line())
        failed = failed or check.status == FAIL
    if failed:
        raise typer.Exit(1)


@app.command()
def manifest(
    request_url: Annotated[
        str | None, typer.Option(help="Public https URL of /slack/events (HTTP mode); omit for Socket Mode.")
    ] = None,
    name: Annotated[str, typer.Option(help="App display name.")] = "Tierwise",
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of YAML.")] = False,
    legacy_assistant_view: Annotated[
        bool,
        typer.Option(
            "--legacy-assistant-view",
            help="assistant_view instead of agent_view (installs not yet migrated).",
        ),
    ] = False,
) -> None:
    """Print the Slack app manifest generated from the loaded skills (scopes, events, commands)."""
    from bot.adapters.slack.manifest import build_manifest, dump_manifest

    eng = engine(announce=False)
    built = build_manifest(
        eng.registry, name=name, request_url=request_url, legacy_assistant_view=legacy_assistant_view
    )
    typer.echo(dump_manifest(built, as_json=as_json))


@app.command("config")
def show_config() -> None:
    """Print the effective configuration (secrets masked)."""
    from bot.config import redacted

    conf = settings()
    data = redacted(conf)
    data["data"] = _data_summary(conf)
    typer.echo(json.dumps(data, indent=2, default=str))


def _data_summary(conf: Settings) -> dict[str, Any]:
    """Retention in force, the last purge, the ledger's size; a ledger not yet created is not created."""
    from pathlib import Path

    from bot.ledger.retention import data_summary
    from bot.ledger.store import Ledger

    url = conf.effective_database_url
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None
    if path and path != ":memory:" and not Path(path).is_file():
        return {"ledger": f"not created yet ({path})"}
    try:
        return data_summary(Ledger(url), conf)
    except Exception as exc:  # e.g. an unreachable database server: say so, the config still prints
        return {"ledger": f"unavailable ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"}


@app.command()
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would go; change nothing.")] = False,
) -> None:
    """Blank message text older than `retention.text_days` (figures are kept) and drop expired event ids."""
    from bot.ledger.retention import purge as run_purge
    from bot.ledger.store import Ledger

    conf = settings()
    report = run_purge(Ledger(conf.effective_database_url), conf, dry_run=dry_run)
    typer.echo(report.summary())


@privacy_app.command("export")
def privacy_export(
    user: Annotated[str, typer.Argument(help="Slack user id, e.g. U012ABCDEF.")],
    out: Annotated[str | None, typer.Option("--out", help="Write the JSON here instead of stdout.")] = None,
) -> None:
    """Everything the ledger holds about one person, as JSON (logged in the privacy audit)."""
    from pathlib import Path

    from bot.ledger.privacy import export_user
    from bot.ledger.store import Ledger

    conf = settings()
    data = export_user(Ledger(conf.effective_database_url), user)
    if data is None:
        fail(f"no data about user {user!r} in the ledger; nothing exported")
    text = json.dumps(data, indent=2, default=str)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
        typer.echo(
            f"Exported {len(data['requests'])} request(s) and {len(data['feedback'])} rating(s) to {out}."
        )
    else:
        typer.echo(text)


@privacy_app.command("erase")
def privacy_erase(
    user: Annotated[str, typer.Argument(help="Slack user id, e.g. U012ABCDEF.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase one person: their id is replaced by a pseudonym and their texts blanked; figures stay."""
    from bot.ledger.privacy import erase_user
    from bot.ledger.store import Ledger

    conf = settings()
    if not yes and not typer.confirm(f"Erase every trace of {user} from the ledger? This cannot be undone"):
        fail("not erased")
    counts = erase_user(Ledger(conf.effective_database_url), user)
    if counts is None:
        fail(f"no data about user {user!r} in the ledger; nothing changed")
    typer.echo(f"Erased {user}: " + ", ".join(f"{n} {name}" for name, n in counts.items()) + ".")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (the program also does this on start)."""
    from bot.config import redacted_url
    from bot.ledger import db

    conf = settings()
    engine_ = db.make_engine(conf.effective_database_url)
    head = db.upgrade(engine_)
    typer.echo(f"Database {redacted_url(conf.effective_database_url)} is at revision {head}.")


@cost_app.command("recompute")
def cost_recompute(since: Annotated[str, typer.Option(help="Window: 30d, 12w, or a date.")] = "90d") -> None:
    """Re-price requests from their stored token buckets with today's prices (tier overrides or litellm's map)."""
    from bot.economics.costs import recompute
    from bot.ledger.store import Ledger

    conf = settings()
    start = parse_since(since)
    result = recompute(conf, Ledger(conf.effective_database_url), start)
    typer.echo(
        f"Re-priced {result.rows} request(s) in {result.groups} tier/model group(s) since {start:%Y-%m-%d}: "
        f"${result.before_usd:.6f} → ${result.after_usd:.6f}"
        + (f"; {result.unknown_rows} without a known price" if result.unknown_rows else "")
    )


def main() -> None:
    from bot.ledger.db import DatabaseUnavailable

    try:
        app()
    except DatabaseUnavailable as exc:  # one line, the URL's password masked
        typer.echo(f"tierwise: {exc}", err=True)
        sys.exit(2)
    except ConfigError as exc:
        typer.echo("tierwise: configuration error:", err=True)
        for line in str(exc).splitlines():
            typer.echo(f"  {line}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
