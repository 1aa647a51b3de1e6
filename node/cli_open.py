"""`zion open`: the web UI in the default browser, logged in.

The login URL carries the API token, and a browser started with it on its command line shows
it to every local user (`ps`). So, as Jupyter does, we hand the browser a file (mode 0600, in
the node home) that redirects to the login URL instead.
"""

from __future__ import annotations

import html
import webbrowser
from typing import Any, Final

import click

from zion.node.errors import NodeError
from zion.node.home import NodeHome, write_secret

REDIRECT_FILE: Final = "open.html"


def login_url(home: NodeHome) -> str:
    try:
        base_url = home.gateway_file.read_text("utf-8").strip()
    except FileNotFoundError:
        raise NodeError(
            f"no node is running for {home.path} (start one with: zion --home {home.path} run)"
        ) from None
    return f"{base_url}/login?token={home.load_token()}"


def redirect_page(url: str) -> bytes:
    quoted = html.escape(url, quote=True)
    return (
        "<!doctype html><meta charset=utf-8>"
        f'<meta http-equiv="refresh" content="0;url={quoted}">'
        f'<title>Zion</title><p><a href="{quoted}">Open your Zion node</a></p>\n'
    ).encode()


@click.command("open")
@click.option(
    "--print", "print_only", is_flag=True, help="Print the login URL instead of opening it."
)
@click.pass_obj
def open_ui(ctx: Any, print_only: bool) -> None:
    """Open the running node's web UI in the default browser, logged in.

    Keep the login URL to yourself: it grants full control of the node.
    """
    home: NodeHome = ctx.home
    url = login_url(home)
    if print_only:
        click.echo(url)
        return
    redirect = home.path / REDIRECT_FILE
    write_secret(redirect, redirect_page(url))
    if not webbrowser.open(redirect.as_uri()):
        raise NodeError(
            "no browser could be started here; open this URL in a browser on this machine:\n"
            f"  {url}"
        )
    click.echo(f"opened the web UI in your browser ({url.split('/login')[0]})")
    click.echo(
        "(a browser that cannot read files in the node home, such as a snap or flatpak one,"
        " shows an error instead: then use `zion open --print` and open that URL)"
    )
