"""`zion ipfs ...`: add, read, pin and move content through the running node's gateway.

`zion ipfs add --only-hash` is the one command that needs no node: it runs the importer here
and prints the CIDs the node would give.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final

import click

from zion.node.errors import NodeError

#: The multipart part type of an empty directory (gateway.ipfs.DIRECTORY_PART_TYPE).
DIRECTORY_PART_TYPE: Final = "application/x-directory"
_COPY_CHUNK: Final = 1024 * 1024


@click.group()
def ipfs() -> None:
    """Content on IPFS: add, cat, get, pin, gc, CAR files."""


@ipfs.command("add")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("-r", "--recursive", is_flag=True, help="Add a directory and everything in it.")
@click.option("-Q", "--quieter", is_flag=True, help="Print only the root CID.")
@click.option(
    "--profile",
    type=click.Choice(["unixfs-v1-2025", "kubo-cidv1", "kubo-legacy"]),
    help="Import profile (default: the node's [ipfs] profile, or unixfs-v1-2025 with --only-hash).",
)
@click.option("--only-hash", is_flag=True, help="Compute the CID here; store nothing, no node.")
@click.option("--pin/--no-pin", default=True, show_default=True)
@click.pass_obj
def add(
    ctx: Any,
    path: Path,
    recursive: bool,
    quieter: bool,
    profile: str | None,
    only_hash: bool,
    pin: bool,
) -> None:
    """Add a file (or with -r a directory) and print its CID."""
    if path.is_dir() and not recursive:
        raise click.UsageError(f"{path} is a directory: add it with -r")
    entries = list(_walk(path))
    total = sum(size for _, _, size in entries)
    if only_hash:
        root = _hash_locally(path, profile, total, quieter)
        click.echo(root if quieter else f"added {root} {path.name}")
        return
    with _progress(total, quieter) as advance:
        opened: list[_CountingReader] = []
        try:
            files: list[tuple[str, tuple[str, Any, str]]] = []
            for relative, full, _ in entries:
                if full.is_dir():
                    files.append(("file", (relative, b"", DIRECTORY_PART_TYPE)))
                else:
                    stream = _CountingReader(full.open("rb"), advance)
                    opened.append(stream)
                    files.append(("file", (relative, stream, "application/octet-stream")))
            params = {"pin": "true" if pin else "false"}
            if profile:
                params["profile"] = profile
            with ctx.client().stream("POST", "/api/v1/ipfs/add", files=files, params=params) as r:
                result = r.read() and r.json()
        finally:
            for stream in opened:
                stream.close()
    if quieter:
        click.echo(result["cid"])
        return
    for item in result["files"]:
        click.echo(f"added {item['cid']} {item['path']}")
    click.echo(f"added {result['cid']} {path.name}")


@ipfs.command("cat")
@click.argument("path", metavar="CID[/PATH]")
@click.pass_obj
def cat(ctx: Any, path: str) -> None:
    """Write a file's bytes to standard output."""
    client = ctx.client()
    target = client.get("/api/v1/ipfs/ls/" + _content_path(path))
    if target["kind"] == "directory":
        raise NodeError(f"{path} is a directory: use zion ipfs get")
    with client.stream("GET", f"/ipfs/{target['cid']}") as response:
        out = sys.stdout.buffer
        for chunk in response.iter_bytes(_COPY_CHUNK):
            out.write(chunk)
        out.flush()


@ipfs.command("get")
@click.argument("path", metavar="CID[/PATH]")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Where to write it.")
@click.pass_obj
def get(ctx: Any, path: str, output: Path | None) -> None:
    """Download a file or a whole directory."""
    client = ctx.client()
    target = output or Path(path.rstrip("/").split("/")[-1])
    _download(client, _content_path(path), target)
    click.echo(f"saved {target}", err=True)


@ipfs.group("pin")
def pin() -> None:
    """Keep content (and everything under it) from garbage collection."""


@pin.command("add")
@click.argument("cid")
@click.pass_obj
def pin_add(ctx: Any, cid: str) -> None:
    """Fetch everything under CID that is not here yet, and pin it."""
    ctx.client().request("POST", f"/api/v1/ipfs/pins/{cid}", timeout=None)
    click.echo(f"pinned {cid}")


@pin.command("rm")
@click.argument("cid")
@click.pass_obj
def pin_rm(ctx: Any, cid: str) -> None:
    ctx.client().request("DELETE", f"/api/v1/ipfs/pins/{cid}")
    click.echo(f"unpinned {cid}")


@pin.command("ls")
@click.pass_obj
def pin_ls(ctx: Any) -> None:
    for item in ctx.client().get("/api/v1/ipfs/pins")["items"]:
        click.echo(f"{item['cid']} {','.join(item['owners'])}")


@ipfs.command("gc")
@click.pass_obj
def gc(ctx: Any) -> None:
    """Remove every block no pin needs."""
    result = ctx.client().request("POST", "/api/v1/ipfs/gc", timeout=None)
    click.echo(
        f"removed {result['blocks_removed']} blocks ({result['bytes_freed']:,} bytes); "
        f"kept {result['blocks_kept']}"
    )


@ipfs.group("car")
def car() -> None:
    """A DAG as one file (CAR v1)."""


@car.command("export")
@click.argument("cid")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@click.pass_obj
def car_export(ctx: Any, cid: str, output: Path) -> None:
    with ctx.client().stream("GET", f"/ipfs/{cid}", params={"format": "car"}) as response:
        _save(response.iter_bytes(_COPY_CHUNK), output)
    click.echo(f"saved {output} ({output.stat().st_size:,} bytes)", err=True)


@car.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pin/--no-pin", default=True, show_default=True)
@click.pass_obj
def car_import(ctx: Any, file: Path, pin: bool) -> None:
    with (
        file.open("rb") as stream,
        ctx.client().stream(
            "POST",
            "/api/v1/ipfs/car",
            content=iter(lambda: stream.read(_COPY_CHUNK), b""),
            params={"pin": "true" if pin else "false"},
        ) as response,
    ):
        roots = response.read() and response.json()["roots"]
    for root in roots:
        click.echo(root)


# --- helpers ---------------------------------------------------------------------------


def _walk(path: Path) -> Iterator[tuple[str, Path, int]]:
    """(path inside the upload, path here, size) for the file or every entry of the tree."""
    if path.is_file():
        yield path.name, path, path.stat().st_size
        return
    base = path.parent
    for directory, dirnames, filenames in os.walk(path):
        dirnames.sort()
        here = Path(directory)
        if not dirnames and not filenames:
            yield here.relative_to(base).as_posix(), here, 0
        for name in sorted(filenames):
            full = here / name
            if full.is_symlink() or not full.is_file():
                raise NodeError(f"cannot add {full}: not a regular file")
            yield full.relative_to(base).as_posix(), full, full.stat().st_size


def _hash_locally(path: Path, profile: str | None, total: int, quieter: bool) -> str:
    from zion.storage.unixfs import DEFAULT_PROFILE, PROFILES, UnixFsError, import_path
    from zion.storage.unixfs.importer import DiscardingSink

    chosen = PROFILES[profile] if profile else DEFAULT_PROFILE
    with _progress(total, quieter) as advance:
        done = 0

        def report(now: int) -> None:
            nonlocal done
            advance(now - done)
            done = now

        try:
            return str(import_path(path, DiscardingSink(), chosen, report).cid)
        except UnixFsError as exc:
            raise NodeError(str(exc)) from None


class _CountingReader:
    """A file whose reads move the progress bar (httpx streams multipart parts by read())."""

    def __init__(self, stream: IO[bytes], advance: Any) -> None:
        self._stream = stream
        self._advance = advance

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._advance(len(data))
        return data

    def close(self) -> None:
        self._stream.close()


class _progress:  # noqa: N801 (used like a function: `with _progress(...) as advance`)
    """A progress bar on a terminal, for long work; nothing otherwise."""

    def __init__(self, total: int, quiet: bool) -> None:
        self._bar: Any = None
        if not quiet and sys.stderr.isatty() and total > _COPY_CHUNK:
            self._bar = click.progressbar(length=total, file=sys.stderr, label="adding")

    def __enter__(self) -> Any:
        if self._bar is None:
            return lambda _: None
        return self._bar.__enter__().update

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _content_path(path: str) -> str:
    return path.removeprefix("/ipfs/").removeprefix("ipfs://")


def _download(client: Any, content_path: str, target: Path) -> None:
    listing = client.get("/api/v1/ipfs/ls/" + content_path)
    if listing["kind"] != "directory":
        with client.stream("GET", f"/ipfs/{listing['cid']}") as response:
            _save(response.iter_bytes(_COPY_CHUNK), target)
        return
    target.mkdir(parents=True, exist_ok=True)
    for entry in listing["items"]:
        name = entry["name"]
        if name in (".", "..") or "/" in name or "\\" in name:
            raise NodeError(f"refusing to write an entry named {name!r}")
        _download(client, entry["cid"], target / name)


def _save(chunks: Iterator[bytes], target: Path) -> None:
    """Write to a temporary file next to ``target`` and rename: no half-written files."""
    partial = target.with_name(target.name + ".part")
    with partial.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
    os.replace(partial, target)
