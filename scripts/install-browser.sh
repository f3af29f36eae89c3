#!/usr/bin/env bash
# Make the browser test's tools available, idempotently: Debian's `chromium` on the PATH and
# the Python `playwright` package in .venv.
#
# We never run `playwright install`: its browser download is not reachable from every machine
# (CI included), and tests/e2e/test_patient_page_browser.py launches the system chromium
# through `executable_path` instead. Without chromium (not root, or apt failing) this prints
# why and exits 0: the browser test then skips with that reason, and the suite reports it.
set -euo pipefail

cd "$(dirname "$0")/.."

venv_python=.venv/bin/python
playwright_spec='playwright>=1.45'

say() { echo "install-browser: $*"; }

if command -v chromium >/dev/null 2>&1; then
    say "chromium already installed: $(command -v chromium)"
elif [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's chromium (apt-get) ..."
    # --no-install-recommends: the headless test needs no fonts beyond the defaults, no extras.
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
        say "chromium installed: $(command -v chromium)"
    else
        say "WARNING: apt-get could not install chromium;" \
            "tests/e2e/test_patient_page_browser.py will be SKIPPED."
    fi
else
    say "WARNING: chromium is not on the PATH and this is not root (or has no apt-get), so it" \
        "cannot be installed here; tests/e2e/test_patient_page_browser.py will be SKIPPED." \
        "Install it with: sudo apt-get install --no-install-recommends chromium"
fi

if [[ ! -x "$venv_python" ]]; then
    say "$venv_python is missing (run \`make install\`)" >&2
    exit 1
fi
# pyproject's test extra lists playwright too; this covers a venv installed before it did.
if "$venv_python" -c 'import playwright.sync_api' >/dev/null 2>&1; then
    say "playwright already installed"
else
    say "installing $playwright_spec into .venv (no browser download) ..."
    "$venv_python" -m pip install --quiet --disable-pip-version-check "$playwright_spec"
fi
