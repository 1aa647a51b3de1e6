"""dev.sh is safe to run again, also while zion processes run: a second setup changes
nothing under build/, where the strict editable install links the package.

Re-linking rebuilt build/ under every running test node once (the devnet test runs
`./dev.sh devnet` beside the rest of the suite) and a node starting then could not import
its own modules."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETUP_TIMEOUT_S = 600.0
RELINK_MESSAGE = "linking the zion package"


def setup() -> str:
    done = subprocess.run(
        [str(ROOT / "dev.sh"), "setup"],
        capture_output=True,
        text=True,
        timeout=SETUP_TIMEOUT_S,
        check=True,
    )
    return done.stderr


def link_tree() -> dict[str, tuple[int, float]]:
    """Every entry under build/ with its inode and modification time."""
    return {
        str(path): (path.lstat().st_ino, path.lstat().st_mtime)
        for path in (ROOT / "build").rglob("*")
    }


def test_a_second_setup_leaves_the_package_links_alone() -> None:
    setup()  # may link, if this checkout changed since the last setup
    before = link_tree()
    assert any(name.endswith("/zion/node/daemon.py") for name in before)
    again = setup()
    assert RELINK_MESSAGE not in again
    assert link_tree() == before
