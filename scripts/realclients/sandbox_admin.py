"""What the real-client checks share: the sandbox's admin API over HTTP and the demo tenant's
values. Standard library only, so it never stands between a library and the sandbox.

The admin API (`POST /_sandbox/admin`, `GET /_sandbox/requests`, `GET /_sandbox/outbox`) is the
stand-in for the Azure portal and for the mail arriving from outside; the checks use it to seed
mail, approve a device code as a person would, and read back what the library really sent
(the request log, the outbox). Commands are JSON (`Content-Type: application/json`, the only
type it takes), with `Authorization: Bearer $SANDBOX_ADMIN_TOKEN` when that variable is set.
"""

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request

# The demo tenant (crates/sandbox/src/seed/demo.toml). The secret is public and DEMO-ONLY.
TENANT = "contoso.example"
TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
APP = "00000000-0000-0000-0000-00000000d3e0"
SECRET = "demo-secret-do-not-use-in-production"
GRAPH_DEFAULT = "https://graph.microsoft.com/.default"
EWS_DEFAULT = "https://outlook.office365.com/.default"


class CheckFailed(Exception):
    """A check's expectation did not hold; the message says what was seen."""


def require(condition, message):
    """Fails the check with `message` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


def ok(step, detail):
    """Prints one passed step."""
    print(f"  ok  {step:<28} {detail}", flush=True)


def run_check(name, main):
    """Runs `main()`, prints PASSED or the failure, and exits with 0 or 1."""
    started = time.monotonic()
    try:
        main()
    except CheckFailed as e:
        print(f"FAIL {name}: {e}", flush=True)
        sys.exit(1)
    except Exception as e:  # a library raised: that is a failure too, with its text
        print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        raise
    print(f"{name} check PASSED ({time.monotonic() - started:.1f} s)", flush=True)


def ca_file():
    """The sandbox's CA certificate (PEM), as run.sh exports it."""
    return os.environ.get("SSL_CERT_FILE") or os.environ.get("REQUESTS_CA_BUNDLE")


class Sandbox:
    """The sandbox at `base` (https://localhost:PORT), trusting the CA in SSL_CERT_FILE."""

    def __init__(self, base):
        self.base = base.rstrip("/")
        self._tls = ssl.create_default_context(cafile=ca_file())

    def authority(self, tenant=TENANT):
        return f"{self.base}/{tenant}"

    def call(self, method, path, body=None, headers=None):
        """One HTTP request; returns (status, parsed JSON or None). Never raises on a status."""
        headers = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if path.startswith("/_sandbox/") and os.environ.get("SANDBOX_ADMIN_TOKEN"):
            headers["Authorization"] = f"Bearer {os.environ['SANDBOX_ADMIN_TOKEN']}"
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, context=self._tls) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw

    def admin(self, op, **fields):
        """One admin command; fails the check unless the sandbox accepts it."""
        status, answer = self.call("POST", "/_sandbox/admin", {"op": op, **fields})
        require(status == 200, f"admin {op}: HTTP {status} {answer}")
        return answer

    def inject(self, to, subject, body, message_id, sender="customer@fabrikam.example"):
        """Delivers a plain-text message to `to` as if it came in over SMTP."""
        mime = (f"From: Customer <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
                f"Message-ID: <{message_id}>\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"\r\n{body}\r\n")
        answer = self.admin("inject_mime", to=[to], mime=mime)
        require(answer.get("delivered"), f"inject to {to}: {answer}")

    def request_log(self):
        status, log = self.call("GET", "/_sandbox/requests")
        require(status == 200, f"GET /_sandbox/requests: HTTP {status}")
        return log

    def token_requests(self):
        """Requests to the token endpoint so far (any status)."""
        return self.request_log()["token_requests"]

    def count(self, method, path):
        """Requests to one route template so far (any status)."""
        return sum(e["count"] for e in self.request_log()["entries"]
                   if e["method"] == method and e["path"] == path)

    def outbox(self):
        """Mail that left the tenant: [{from, recipients, mime, at}]."""
        status, out = self.call("GET", "/_sandbox/outbox")
        require(status == 200, f"GET /_sandbox/outbox: HTTP {status}")
        return out
