#!/usr/bin/env bash
# Self-test of the peer ingest jobs: both peers, unchanged from PyPI, against the TLS sandbox.
#
# Usage: scripts/bench/selftest.sh [N]       (from anywhere; N messages per peer, default 300)
# Env:   CARGO_TARGET_DIR (default: target)  where the sandbox binary is built
#        BENCH_VENV (default: $CARGO_TARGET_DIR/bench-venv)  venv with requirements.txt installed
#        SANDBOX_BIN (default: build it)     a prebuilt sandbox binary to use instead
#
# 1. makes the venv and pip-installs scripts/bench/requirements.txt (pinned) if needed;
# 2. builds and starts the sandbox with --tls on a free port (the demo tenant without its two
#    demo messages), writing its CA certificate;
# 3. for each peer: seeds N unread messages with seed.py (admin API inject_mime), runs the peer's
#    ingest job, and checks its OUT.json with check.py (fetched == acknowledged == N, routed ==
#    the seeder's counts, no errors, no unread message left), printing the requests it made.
# Not part of `cargo xtask ci` (it needs PyPI and takes a while).
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-300}"
TARGET="${CARGO_TARGET_DIR:-target}"
VENV="${BENCH_VENV:-$TARGET/bench-venv}"
REQS=scripts/bench/requirements.txt
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
FROZEN="$("$VENV/bin/pip" freeze 2>/dev/null || true)"
if ! "$VENV/bin/python" -c "import exchangelib, msgraph, azure.identity, deprecated" 2>/dev/null \
    || ! grep -qiF "$(grep -i '^msgraph-sdk==' "$REQS")" <<<"$FROZEN"; then
    "$VENV/bin/pip" install --quiet -r "$REQS"
fi
if [ -z "${SANDBOX_BIN:-}" ]; then
    cargo build --quiet -p m365mail-sandbox --bin m365mail-sandbox
    SANDBOX_BIN="$TARGET/debug/m365mail-sandbox"
fi

WORK="$(mktemp -d)"
SANDBOX_PID=
trap '[ -n "$SANDBOX_PID" ] && kill "$SANDBOX_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
# The demo tenant minus its [[messages]] (they come last), so the Inbox holds only what we seed.
sed '/^\[\[messages\]\]/,$d' crates/sandbox/src/seed/demo.toml >"$WORK/seed.toml"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$SANDBOX_BIN" --port "$PORT" --smtp-port 0 --seed "$WORK/seed.toml" --tls \
    --ca-out "$WORK/ca.pem" >"$WORK/sandbox.log" 2>&1 &
SANDBOX_PID=$!
for _ in $(seq 1 100); do
    [ -s "$WORK/ca.pem" ] && break
    sleep 0.1
done
[ -s "$WORK/ca.pem" ] || { echo "the sandbox did not start:"; cat "$WORK/sandbox.log"; exit 1; }

BASE="https://localhost:$PORT"
# Demo tenant values (public, DEMO-ONLY secret from crates/sandbox/src/seed/demo.toml).
TENANT=contoso.example
APP=00000000-0000-0000-0000-00000000d3e0
SECRET=demo-secret-do-not-use-in-production
MAILBOX=helpdesk@contoso.example
PY="$VENV/bin/python"
FAILED=0
for peer in exchangelib msgraph; do
    echo "=== $peer: seeding $N messages"
    "$PY" scripts/bench/seed.py --base-url "$BASE" --ca-bundle "$WORK/ca.pem" --mailbox "$MAILBOX" \
        --count "$N" --routes-out "$WORK/routes.json" --expect-out "$WORK/expect-$peer.json"
    python3 -c "import json,ssl,urllib.request as u; print(u.urlopen('$BASE/_sandbox/requests', context=ssl.create_default_context(cafile='$WORK/ca.pem')).read().decode())" \
        >"$WORK/before-$peer.json"
    echo "=== $peer: ingest"
    # CPU time and peak RSS of the job as a child process, when GNU time is there (reported,
    # not checked: the bench driver measures these itself from rusage).
    TIMER=()
    [ -x /usr/bin/time ] && TIMER=(/usr/bin/time -f "$peer: %U s user, %S s sys, %M KB peak RSS, %e s wall (process)")
    "${TIMER[@]}" "$PY" "scripts/bench/${peer}_ingest.py" --base-url "$BASE" --tenant "$TENANT" --client-id "$APP" \
        --client-secret "$SECRET" --mailbox "$MAILBOX" --routes "$WORK/routes.json" --ack read \
        --result "$WORK/out-$peer.json" --ca-bundle "$WORK/ca.pem" || echo "(exit code $?)"
    cat "$WORK/out-$peer.json"
    if grep -qF "$SECRET" "$WORK/out-$peer.json"; then
        echo "FAIL: the client secret is in OUT.json"
        FAILED=1
    fi
    "$PY" scripts/bench/check.py --out "$WORK/out-$peer.json" --expect "$WORK/expect-$peer.json" \
        --base-url "$BASE" --ca-bundle "$WORK/ca.pem" --tenant "$TENANT" --client-id "$APP" \
        --client-secret "$SECRET" --mailbox "$MAILBOX" --requests-before "$WORK/before-$peer.json" \
        || FAILED=1
done
if [ "$FAILED" != 0 ]; then
    echo "--- sandbox log (tail) ---"
    tail -30 "$WORK/sandbox.log"
    echo "peer selftest FAILED"
    exit 1
fi
echo "peer selftest PASSED"
