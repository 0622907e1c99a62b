#!/usr/bin/env python3
"""Requests the m365mail handler sends to drain N messages from one source.

    python3 scripts/bench/handler_requests.py target/release/m365mail graph 1000 [BATCH]
    python3 scripts/bench/handler_requests.py target/release/m365mail ews 1000 [BATCH]

Starts `m365mail sandbox` on free ports, delivers N small messages to the demo helpdesk,
runs `m365mail run --once --json` with one source of that kind (mark-read, handler batch
BATCH, default 100) and prints, as JSON, what the sandbox's request log counted: every
endpoint (and EWS operation) with its count, the total, and the run's wall time. The counts
are exact and repeatable; the time is one run on whatever machine this is.
"""
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[2] not in ("graph", "ews"):
        print(__doc__, file=sys.stderr)
        return 2
    binary, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    port, smtp = free_port(), free_port()
    sandbox = subprocess.Popen(
        [binary, "sandbox", "--port", str(port), "--smtp-port", str(smtp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def call(path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            base + path, data=data, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")

    try:
        for _ in range(200):
            try:
                call("/_sandbox/tenant")
                break
            except OSError:
                time.sleep(0.05)
        for i in range(n):
            mime = (
                f"From: c{i}@fabrikam.example\r\nTo: helpdesk@contoso.example\r\n"
                f"Subject: bulk {i}\r\nMessage-ID: <bulk-{i}@fabrikam.example>\r\n\r\nbody {i}\r\n"
            )
            call("/_sandbox/admin", {"op": "inject_mime", "to": ["helpdesk@contoso.example"], "mime": mime})
        work = tempfile.mkdtemp(prefix="handler-requests-")
        url = f"{base}/v1.0" if kind == "graph" else f"{base}/EWS/Exchange.asmx"
        config = f"""
[[apps]]
name = "demo"
tenant = "contoso.example"
authority_base = "{base}"
client_id = "00000000-0000-0000-0000-00000000d3e0"
client_secret = "demo-secret-do-not-use-in-production"

[[sources]]
name = "helpdesk"
kind = "{kind}"
app = "demo"
mailbox = "helpdesk@contoso.example"
url = "{url}"
acknowledge = "mark-read"

[sources.routing.mailbox]
primary = "helpdesk@contoso.example"

[[sources.routing.rules]]
match = "default"
project = "DESK"

[handler]
output_dir = "{work}/out"
batch_size = {batch}
"""
        with open(f"{work}/m365mail.toml", "w") as f:
            f.write(config)
        call("/_sandbox/admin", {"op": "clear_request_log"})
        started = time.time()
        run = subprocess.run(
            [binary, "run", "--once", "--config", f"{work}/m365mail.toml", "--json"],
            capture_output=True,
            text=True,
        )
        seconds = time.time() - started
        if run.returncode != 0:
            print(run.stdout + run.stderr, file=sys.stderr)
            return 1
        summary = json.loads(run.stdout)
        log = call("/_sandbox/requests")
    finally:
        sandbox.kill()
    print(
        json.dumps(
            {
                "kind": kind,
                "messages": n,
                "batch_size": batch,
                "handled": summary["sources"][0]["handled"],
                "requests": sum(e["count"] for e in log["entries"]),
                "seconds": round(seconds, 2),
                "endpoints": [[e["method"], e["path"], e["count"]] for e in log["entries"]],
                "ews_operations": [[o["operation"], o["count"]] for o in log.get("operations", [])],
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
