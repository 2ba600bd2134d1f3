#!/usr/bin/env bash
# The dashboard in a real browser: installs Debian's Chromium (apt-get) and Playwright for
# Python with axe-core (pinned, from PyPI into a venv; Playwright is pointed at /usr/bin/chromium
# and downloads no browser), builds the release server and runs scripts/browser-check.py.
# Screenshots go to target/ui-screenshots/. Loopback only; about two minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

PLAYWRIGHT_VERSION=1.65.2
AXE_VERSION=0.1.8
if ! command -v chromium >/dev/null; then
  echo "installing chromium"
  (apt-get install -y -q chromium >/dev/null 2>&1 ||
    (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null))
fi
venv="${NETORCH_BROWSER_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/netorch-browser-$PLAYWRIGHT_VERSION}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import playwright, axe_playwright_python" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "playwright==$PLAYWRIGHT_VERSION" "axe-playwright-python==$AXE_VERSION"
fi

cargo build --release --locked -q --bin netorch-server
"$venv/bin/python" scripts/browser-check.py --target-dir "${CARGO_TARGET_DIR:-target}" \
  --shots target/ui-screenshots "$@"
