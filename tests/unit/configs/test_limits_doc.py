"""docs/limits.md is the one place every limit is documented: a limit setting or a wire-format
limit that it does not name fails here."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from zion.node import config
from zion.protocols import limits

DOC = Path(__file__).resolve().parents[3] / "docs" / "limits.md"
#: Settings whose names say they bound something.
LIMIT_KEY = re.compile(r"max_|_per_|timeout|quota|burst|_days|tolerance|window|interval|degree")


def settings(table: dict[str, object], prefix: str = "") -> list[tuple[str, str]]:
    found = []
    for key, value in table.items():
        if isinstance(value, dict):
            found += settings(value, f"{prefix}.{key}" if prefix else key)
        else:
            found.append((prefix, key))
    return found


def documented(section: str, key: str, text: str) -> bool:
    """Named as `[section] key`, or as `key` in a row that names its section (or, for the
    bridges' services, in the table that covers both)."""
    if f"`[{section}] {key}`" in text:
        return True
    return any(
        f"`{key}`" in line and (f"[{section}]" in line or section.startswith("bridge."))
        for line in text.splitlines()
    )


def test_every_limit_setting_is_on_the_page() -> None:
    text = DOC.read_text()
    missing = [
        f"[{section}] {key}"
        for section, key in settings(tomllib.loads(config.default_toml()))
        if LIMIT_KEY.search(key) and not documented(section, key, text)
    ]
    assert not missing, f"docs/limits.md does not document: {missing}"


def test_every_wire_format_limit_is_on_the_page() -> None:
    text = DOC.read_text()
    constants = [name for name in vars(limits) if name.startswith(("MAX_", "MIN_"))]
    assert len(constants) > 30
    missing = [name for name in constants if f"`{name}`" not in text and f"{name}`" not in text]
    assert not missing, f"docs/limits.md does not document: {missing}"
