#!/usr/bin/env python3
"""Checks one peer run against what was seeded and against the sandbox (standard library only).

  check.py --out OUT.json --expect EXPECTED.json --base-url URL --tenant T --client-id ID \
      --client-secret S --mailbox ADDR [--ca-bundle CA.pem] [--requests-before BEFORE.json]

Passes when OUT.json says fetched == acknowledged == the seeded count, routed equals the
seeder's per-project counts, and there are no errors; and the sandbox itself (Graph, app-only)
reports no unread message left in the mailbox's Inbox. Prints the requests the run made, per
endpoint and EWS operation, from the sandbox's request log (minus BEFORE.json if given). The log
is read with `Authorization: Bearer $SANDBOX_ADMIN_TOKEN` when that variable is set.
"""

import argparse
import json
import os
import ssl
import sys
import urllib.parse
import urllib.request


def fetch(url, ctx, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {},
                                 method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, context=ctx) as r:
        return json.loads(r.read())


def log_counts(snapshot):
    """{(method, path, operation-or-empty): count} from a /_sandbox/requests snapshot."""
    out = {}
    for e in snapshot.get("entries", []):
        if e["path"].endswith("Exchange.asmx"):
            continue  # counted per operation below
        k = (e["method"], e["path"], "")
        out[k] = out.get(k, 0) + e["count"]
    for e in snapshot.get("operations", []):
        k = (e["method"], e["path"], e["operation"])
        out[k] = out.get(k, 0) + e["count"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for a in ("--out", "--expect", "--base-url", "--tenant", "--client-id", "--client-secret",
              "--mailbox"):
        ap.add_argument(a, required=True)
    ap.add_argument("--ca-bundle")
    ap.add_argument("--requests-before")
    args = ap.parse_args()
    base = args.base_url.rstrip("/")
    ctx = ssl.create_default_context(cafile=args.ca_bundle) if args.ca_bundle else None

    with open(args.out, encoding="utf-8") as f:
        out = json.load(f)
    with open(args.expect, encoding="utf-8") as f:
        expect = json.load(f)
    n = expect["count"]
    problems = []
    if out.get("fetched") != n:
        problems.append(f"fetched {out.get('fetched')}, seeded {n}")
    if out.get("acknowledged") != n:
        problems.append(f"acknowledged {out.get('acknowledged')}, seeded {n}")
    if out.get("routed") != expect["routed"]:
        problems.append(f"routed {out.get('routed')}, want {expect['routed']}")
    if out.get("errors"):
        problems.append(f"errors: {out['errors'][:5]}")
    if not isinstance(out.get("seconds"), (int, float)) or out["seconds"] <= 0:
        problems.append(f"seconds: {out.get('seconds')!r}")

    token = fetch(f"{base}/{args.tenant}/oauth2/v2.0/token", ctx, urllib.parse.urlencode({
        "grant_type": "client_credentials", "client_id": args.client_id,
        "client_secret": args.client_secret,
        "scope": "https://graph.microsoft.com/.default"}).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"})["access_token"]
    inbox = fetch(f"{base}/v1.0/users/{args.mailbox}/mailFolders/inbox", ctx,
                  headers={"Authorization": f"Bearer {token}"})
    if inbox.get("unreadItemCount") != 0:
        problems.append(f"the sandbox's Inbox still has {inbox.get('unreadItemCount')} unread")

    admin_token = os.environ.get("SANDBOX_ADMIN_TOKEN")
    admin_headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else None
    now = log_counts(fetch(f"{base}/_sandbox/requests", ctx, headers=admin_headers))
    before = {}
    if args.requests_before:
        with open(args.requests_before, encoding="utf-8") as f:
            before = log_counts(json.load(f))
    # The check's own token and folder requests are not the run's.
    own = {("POST", f"/{{tenant}}/oauth2/v2.0/token", ""): 1,
           ("GET", "/v1.0/users/{user}/mailFolders/{folder}", ""): 1}
    total = 0
    print(f"{out.get('client')}: {n} messages in {out.get('seconds')} s; requests:")
    for k in sorted(now):
        c = now[k] - before.get(k, 0) - own.get(k, 0)
        if c:
            total += c
            print(f"  {c:6d}  {k[0]} {k[1]} {k[2]}".rstrip())
    print(f"  {total:6d}  total")
    if problems:
        print("FAIL: " + "; ".join(problems))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
