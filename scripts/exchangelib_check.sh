#!/usr/bin/env bash
# Real-client check: Python's exchangelib against the standalone sandbox, unchanged.
#
# Usage: scripts/exchangelib_check.sh            (from the workspace root)
# Env:   CARGO_TARGET_DIR (default: target)      where the venv and the sandbox binary live
#        EXCHANGELIB_VERSION (default: 5.6.0)    the exchangelib release to install
#
# 1. makes a venv under $CARGO_TARGET_DIR/exchangelib-venv and pip-installs exchangelib;
# 2. builds and starts the sandbox with --tls on a free port, writing its CA certificate;
# 3. runs scripts/exchangelib_check.py with REQUESTS_CA_BUNDLE pointing at that CA.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-target}"
VENV="$TARGET/exchangelib-venv"
VERSION="${EXCHANGELIB_VERSION:-5.6.0}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import exchangelib" 2>/dev/null; then
    "$VENV/bin/pip" install --quiet "exchangelib==$VERSION"
fi
cargo build --quiet -p sandbox --bin sandbox
WORK="$(mktemp -d)"
trap 'kill "$SANDBOX_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$TARGET/debug/sandbox" --port "$PORT" --smtp-port 0 --tls --ca-out "$WORK/ca.pem" >"$WORK/sandbox.log" 2>&1 &
SANDBOX_PID=$!
for _ in $(seq 1 100); do
    [ -s "$WORK/ca.pem" ] && break
    sleep 0.1
done
[ -s "$WORK/ca.pem" ] || { echo "the sandbox did not start:"; cat "$WORK/sandbox.log"; exit 1; }
REQUESTS_CA_BUNDLE="$WORK/ca.pem" "$VENV/bin/python" scripts/exchangelib_check.py "https://localhost:$PORT" \
    || { echo "--- sandbox log ---"; tail -50 "$WORK/sandbox.log"; exit 1; }
