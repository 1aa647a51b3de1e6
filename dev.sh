#!/usr/bin/env bash
# Sets up everything this project needs, then runs a node or the test suite.
#   ./dev.sh run [zion run flags...]   set up, then start a node on its embedded defaults
#   ./dev.sh test [pytest args...]     set up, then ruff + mypy + the whole test suite
#   ./dev.sh devnet [zion devnet flags...]  set up (with npm's anvil), then run a local
#                                      network on 127.0.0.1 until Ctrl-C (zion devnet --help)
#   ./dev.sh setup                     set up only
# Safe to run again: each step checks what is already there.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
VENV=$ROOT/.venv

log() { printf '==> %s\n' "$*" >&2; }

need_apt() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing Debian packages: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

setup_python() {
    # fastecdsa (pulled by libp2p) builds from source: it needs a compiler and GMP.
    need_apt gcc libgmp-dev python3-venv
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating $VENV"
        python3 -m venv "$VENV"
    fi
    local stamp=$VENV/.lock-installed
    if [ ! -f "$stamp" ] || ! cmp -s requirements.lock "$stamp"; then
        log "installing pinned Python packages (requirements.lock)"
        # The machine's pip.conf names local mirrors that may be absent: hide that noise.
        "$VENV/bin/pip" install -q --require-hashes -r requirements.lock 2>&1 |
            { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2
        cp requirements.lock "$stamp"
    fi
    # trio-typing (pulled in by libp2p) installs trio-stubs written for trio < 0.22, which
    # shadow the inline types trio ships today and make mypy reject correct code.
    rm -rf "$VENV"/lib/python3*/site-packages/trio-stubs
    # Strict editable mode links the sources into build/, so mypy and pytest see the
    # package-dir mapping of pyproject.toml. The links follow edits to a file, but a new
    # module needs a new link: re-link when pyproject.toml or the set of files changes, and
    # only then, since re-linking rebuilds build/ under any zion process running meanwhile
    # (the devnet test runs this script beside the rest of the suite).
    local linked=$VENV/.editable-installed current
    current=$(package_files_digest)
    if [ ! -f "$linked" ] || [ "$(cat "$linked")" != "$current" ] ||
        [ ! -d build ] || ! "$VENV/bin/python" -c "import zion" 2>/dev/null; then
        log "linking the zion package into $VENV (editable, strict)"
        "$VENV/bin/pip" install -q --no-deps --no-build-isolation \
            --config-settings editable_mode=strict -e . >/dev/null
        echo "$current" >"$linked"
    fi
}

# A digest of pyproject.toml and of the names of the files under its package folders.
package_files_digest() {
    "$VENV/bin/python" - <<'PY'
import hashlib
import pathlib
import tomllib

pyproject = pathlib.Path("pyproject.toml")
folders = set(tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-dir"].values())
digest = hashlib.sha256(pyproject.read_bytes())
for folder in sorted(folders):
    for path in sorted(pathlib.Path(folder).rglob("*")):
        if path.is_file() and not {"__pycache__", "node_modules"} & set(path.parts):
            digest.update(str(path).encode() + b"\0")
print(digest.hexdigest())
PY
}

setup_node_packages() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        need_apt nodejs npm
    fi
    # js-libp2p, Helia and anvil for the interop tests (and anvil for zion devnet); solcjs and
    # OpenZeppelin to rebuild contracts. Arguments: only these folders.
    local dir lock stamp dirs=("$@")
    [ ${#dirs[@]} -gt 0 ] || dirs=(tests/interop contracts)
    for dir in "${dirs[@]}"; do
        lock=$dir/package-lock.json stamp=$dir/node_modules/.zion-lock
        if [ -f "$lock" ] && ! cmp -s "$lock" "$stamp" 2>/dev/null; then
            log "installing npm packages in $dir ($lock)"
            (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
            cp "$lock" "$stamp"
        fi
    done
}

cmd=${1:-run}
shift || true
case "$cmd" in
    setup)
        setup_python
        setup_node_packages
        ;;
    run)
        setup_python
        exec "$VENV/bin/zion" run "$@"
        ;;
    devnet)
        setup_python
        setup_node_packages tests/interop
        exec "$VENV/bin/zion" devnet "$@"
        ;;
    test)
        setup_python
        setup_node_packages
        # The browser tests drive Debian's Chromium (Playwright's own browser download
        # cannot run here); Playwright's driver comes with its Python wheel. The partition
        # and NAT tests make network namespaces and veth pairs with iproute2's `ip`, and the
        # NAT test a home router with nftables' `nft`.
        need_apt chromium iproute2 nftables
        log "ruff"
        "$VENV/bin/ruff" check .
        "$VENV/bin/ruff" format --check .
        log "mypy (strict)"
        "$VENV/bin/mypy" -p zion
        # Two workers (the machine's cores), whole files each: most tests wait on real nodes
        # and networks rather than compute, and the 5-minute soak (put first) runs beside
        # the rest. ZION_TEST_WORKERS=0 runs everything in this one process.
        log "pytest (${ZION_TEST_WORKERS:-2} workers)"
        exec "$VENV/bin/pytest" -n "${ZION_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder "$@"
        ;;
    *)
        echo "usage: ./dev.sh run|test|devnet|setup [args...]" >&2
        exit 2
        ;;
esac
