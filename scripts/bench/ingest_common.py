"""Shared pieces of the peer ingest jobs: arguments, MIME parsing, routing, the result file.

Both peers (exchangelib_ingest.py, msgraph_ingest.py) do the same job with a different library:
fetch every unread Inbox message with its MIME, parse it with Python's email package, route it
by its first To/Cc recipient that matches ROUTES.json (a `+tag` sub-address is stripped), mark
it read, and write OUT.json. This module holds what does not depend on the library, so the two
jobs parse and route identically.
"""

import argparse
import email.parser
import email.policy
import email.utils
import json
import sys
import time

# Errors kept in OUT.json; more are counted, not listed (a broken run must not write megabytes).
MAX_ERRORS = 50


def parse_args(description, extra=None):
    """The command line of the peer ingest contract (see README.md); `extra(parser)` adds options."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--base-url", required=True, help="sandbox base URL, e.g. https://localhost:8443")
    p.add_argument("--tenant", required=True, help="tenant id or domain for the token endpoint")
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret", required=True)
    p.add_argument("--mailbox", required=True, help="the pickup mailbox (SMTP address)")
    p.add_argument("--routes", required=True, help="ROUTES.json")
    p.add_argument("--ack", default="read", choices=["read"], help="acknowledgement: mark read")
    p.add_argument("--result", required=True, help="where to write OUT.json")
    p.add_argument("--ca-bundle", help="CA certificate (PEM) of a --tls sandbox")
    if extra is not None:
        extra(p)
    return p.parse_args()


def token_url(base_url, tenant):
    """The sandbox's v2.0 token endpoint for the tenant."""
    return f"{base_url.rstrip('/')}/{tenant}/oauth2/v2.0/token"


class Router:
    """Routes a message to a project by its recipients (the ROUTES.json rules)."""

    def __init__(self, routes):
        if not isinstance(routes, dict) or not isinstance(routes.get("default"), str):
            raise ValueError('ROUTES.json must be {"default": "...", "addresses": {...}}')
        addresses = routes.get("addresses", {})
        if not isinstance(addresses, dict):
            raise ValueError("ROUTES.json: addresses must be an object")
        self.default = routes["default"]
        self.table = {normalize(a): p for a, p in addresses.items()}

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

    def route(self, msg):
        """The project of a parsed message: its first To, then Cc, recipient with a rule."""
        for header in ("to", "cc"):
            values = msg.get_all(header) or []
            for _name, addr in email.utils.getaddresses([str(v) for v in values]):
                project = self.table.get(normalize(addr))
                if project is not None:
                    return project
        return self.default


def normalize(addr):
    """Lower-cases an address and strips its `+tag` sub-address part."""
    addr = addr.strip().lower()
    local, at, domain = addr.rpartition("@")
    if not at:
        return addr
    return f"{local.split('+', 1)[0]}@{domain}"


# The default policy gives the modern EmailMessage API (typed headers, get_body); a parser
# object is reused for every message.
_PARSER = email.parser.BytesParser(policy=email.policy.default)


def parse_mime(mime):
    """Parses a whole MIME message (headers and every part), as a handler would."""
    msg = _PARSER.parsebytes(mime)
    # Walk the parts so the body is really parsed, not only the headers.
    for part in msg.walk():
        if not part.is_multipart():
            part.get_payload(decode=True)
    return msg


class Result:
    """Counts of one run, written as OUT.json."""

    def __init__(self, client, secrets=()):
        self.client = client
        self.fetched = 0
        self.acknowledged = 0
        self.routed = {}
        self.errors = []
        self.more_errors = 0
        self.started = time.perf_counter()
        self._secrets = [s for s in secrets if s]

    def count_route(self, project):
        self.routed[project] = self.routed.get(project, 0) + 1

    def error(self, what):
        text = str(what)
        for s in self._secrets:  # a secret never reaches OUT.json or the console
            text = text.replace(s, "***")
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(text)
        else:
            self.more_errors += 1

    def write(self, path, expected=None):
        """Writes OUT.json; returns the exit code (0 when every listed message was acknowledged)."""
        seconds = time.perf_counter() - self.started
        errors = list(self.errors)
        if self.more_errors:
            errors.append(f"... and {self.more_errors} more errors")
        out = {
            "client": self.client,
            "fetched": self.fetched,
            "acknowledged": self.acknowledged,
            "routed": self.routed,
            "errors": errors,
            "seconds": round(seconds, 3),
        }
        if expected is not None:
            out["listed"] = expected
        with open(path, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2, sort_keys=True)
            f.write("\n")
        ok = not errors and (expected is None or self.fetched == self.acknowledged == expected)
        print(f"{self.client}: fetched {self.fetched}, acknowledged {self.acknowledged}, "
              f"{len(errors)} errors, {seconds:.2f} s", file=sys.stderr)
        return 0 if ok else 1
