#!/usr/bin/env bash
# Real-client checks: libraries nobody here wrote, unchanged from PyPI, against the standalone
# sandbox over TLS, so the sandbox stays faithful to Microsoft 365 (see README.md here).
#
# Usage: scripts/realclients/run.sh [exchangelib] [graph-sdk] [msal]   (default: all three)
# Env:   CARGO_TARGET_DIR (default: target)  where the venv and the sandbox binary live
#        SANDBOX_BIN (default: build it)     a prebuilt sandbox binary to use instead
#
# 1. makes one venv for all checks, $CARGO_TARGET_DIR/realclients-venv, and pip-installs
#    requirements.txt (every package pinned) when the venv was made from another version of it;
# 2. builds the sandbox;
# 3. per check: starts a sandbox of its own (the demo tenant, so each check starts from the same
#    mailboxes) with --tls on a free port, writing its CA certificate, and runs the check's
#    script with REQUESTS_CA_BUNDLE and SSL_CERT_FILE naming that CA.
# Every check runs even when one fails; the exit status is non-zero when any failed, and a
# failed check is followed by the end of its sandbox's log.
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=scripts/realclients
TARGET="${CARGO_TARGET_DIR:-target}"
VENV="$TARGET/realclients-venv"
REQS="$HERE/requirements.txt"

declare -A SCRIPT=(
    [exchangelib]=exchangelib_check.py
    [graph-sdk]=graph_sdk_check.py
    [msal]=msal_check.py
)
CHECKS=("$@")
[ ${#CHECKS[@]} -gt 0 ] || CHECKS=(exchangelib graph-sdk msal)
for c in "${CHECKS[@]}"; do
    [ -n "${SCRIPT[$c]:-}" ] || { echo "unknown check '$c' (exchangelib, graph-sdk, msal)"; exit 2; }
done

started=$SECONDS
WANT="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$WANT" ]; then
    echo "installing $REQS into $VENV"
    "$VENV/bin/pip" install --quiet -r "$REQS"
    echo "$WANT" >"$VENV/.requirements.sha256"
fi
if [ -z "${SANDBOX_BIN:-}" ]; then
    cargo build --quiet -p m365mail-sandbox --bin m365mail-sandbox
    SANDBOX_BIN="$TARGET/debug/m365mail-sandbox"
fi
echo "venv and sandbox ready in $((SECONDS - started)) s"

WORK="$(mktemp -d)"
SANDBOX_PID=
cleanup() {
    if [ -n "$SANDBOX_PID" ]; then kill "$SANDBOX_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
FAILED=()
for c in "${CHECKS[@]}"; do
    echo "== $c"
    rm -f "$WORK/ca.pem"
    PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    "$SANDBOX_BIN" --port "$PORT" --smtp-port 0 --tls --ca-out "$WORK/ca.pem" >"$WORK/$c.log" 2>&1 &
    SANDBOX_PID=$!
    for _ in $(seq 1 100); do
        [ -s "$WORK/ca.pem" ] && break
        sleep 0.1
    done
    if [ ! -s "$WORK/ca.pem" ]; then
        echo "the sandbox did not start:"; cat "$WORK/$c.log"; exit 1
    fi
    t0=$SECONDS
    if REQUESTS_CA_BUNDLE="$WORK/ca.pem" SSL_CERT_FILE="$WORK/ca.pem" PYTHONDONTWRITEBYTECODE=1 \
        "$VENV/bin/python" "$HERE/${SCRIPT[$c]}" "https://localhost:$PORT"; then
        echo "$c: passed in $((SECONDS - t0)) s"
    else
        echo "$c: FAILED after $((SECONDS - t0)) s; the end of its sandbox's log:"
        tail -30 "$WORK/$c.log"
        FAILED+=("$c")
    fi
    kill "$SANDBOX_PID" 2>/dev/null || true
    wait "$SANDBOX_PID" 2>/dev/null || true
    SANDBOX_PID=
done
echo "real-client checks: ${#CHECKS[@]} run, ${#FAILED[@]} failed${FAILED:+ (${FAILED[*]})}; $((SECONDS - started)) s"
[ ${#FAILED[@]} -eq 0 ]
