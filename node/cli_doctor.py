"""`zion doctor`: what stops this node working, and what to do about it."""

from __future__ import annotations

from typing import Any

import click

from zion.node.config import NODE_PROFILES
from zion.node.doctor import run_checks

MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


@click.command("doctor")
@click.option(
    "--profile",
    type=click.Choice(NODE_PROFILES),
    default="member",
    show_default=True,
    help="The profile the node runs with (zion run --profile).",
)
@click.pass_obj
def doctor(ctx: Any, profile: str) -> None:
    """Check the home, ports, peers and reachability, chain, clock, disk, bridge secrets.

    Exits 1 if any check fails; each problem comes with what to do about it.
    """
    config = ctx.home.load_config(None, profile)
    findings = run_checks(ctx.home, config)
    for finding in findings:
        click.echo(f"{MARKS[finding.status]}  {finding.check:<9} {finding.detail}")
        if finding.fix:
            click.echo(f"{'':6}{'':<9} fix: {finding.fix}")
    failed = sum(f.status == "fail" for f in findings)
    warned = sum(f.status == "warn" for f in findings)
    click.echo(f"{failed} failed, {warned} warnings, {len(findings) - failed - warned} ok")
    if failed:
        raise SystemExit(1)
