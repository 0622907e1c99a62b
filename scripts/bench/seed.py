#!/usr/bin/env python3
"""Seeds a running sandbox's pickup mailbox for the peer ingest jobs (standard library only).

  seed.py --base-url URL --mailbox ADDR --count N [--ca-bundle CA.pem] [--big K] [--seed S]
          --routes-out ROUTES.json --expect-out EXPECTED.json

Delivers N unread messages to ADDR through the sandbox's admin API (`POST /_sandbox/admin`,
`{"op": "inject_mime", ...}`): most a few KB of text, a quarter tens of KB of HTML with an inline
image, K (default 2) with a 1 MB attachment. They are addressed to the mailbox's project aliases,
to `+tag` sub-addresses of them, by Cc only, or to the mailbox itself (the default route), so
routing has every case to get right. Writes the ROUTES.json the jobs take and EXPECTED.json:
{"count": N, "routed": {"project": n, ...}}, where each message's project is the one the seeder
addressed it to (decided here, not by the jobs' router).

The admin API takes JSON only (`Content-Type: application/json`); when the sandbox requires an
admin token (always when bound beyond loopback), put it in the SANDBOX_ADMIN_TOKEN environment
variable.
"""

import argparse
import base64
import json
import os
import random
import sys
import ssl
import urllib.request

DOMAIN = "contoso.example"
PROJECTS = ["billing", "support", "sales", "hr", "it"]
DEFAULT = "inbox-triage"


def routes():
    return {"default": DEFAULT,
            "addresses": {f"{p}@{DOMAIN}": p for p in PROJECTS}}


def text_body(rng, kb):
    words = ["invoice", "printer", "order", "laptop", "refund", "meeting", "please", "thanks",
             "urgent", "account", "password", "delivery", "contract", "the", "a", "is", "not"]
    out, size = [], 0
    while size < kb * 1024:
        line = " ".join(rng.choice(words) for _ in range(12))
        out.append(line)
        size += len(line) + 2
    return "\r\n".join(out)


def b64_lines(data):
    s = base64.b64encode(data).decode()
    return "\r\n".join(s[i:i + 76] for i in range(0, len(s), 76))


def message(i, rng, to, cc, kind):
    """One RFC 822 message: kind is 'text', 'html' (inline image) or 'big' (1 MB attachment)."""
    head = [f"From: Customer {i} <customer{i}@fabrikam.example>", f"To: {to}"]
    if cc:
        head.append(f"Cc: {cc}")
    head += [f"Subject: bench message {i}", f"Message-ID: <bench-{i}-{rng.getrandbits(32)}@seed>",
             "Date: Mon, 02 Nov 2026 09:30:00 +0000", "MIME-Version: 1.0"]
    if kind == "text":
        head.append("Content-Type: text/plain; charset=utf-8")
        return "\r\n".join(head) + "\r\n\r\n" + text_body(rng, rng.randint(1, 4)) + "\r\n"
    b = f"b{i}x{rng.getrandbits(32)}"
    if kind == "html":
        image = rng.randbytes(rng.randint(8, 24) * 1024)
        html = "<html><body><p>" + text_body(rng, rng.randint(8, 20)).replace(
            "\r\n", "</p><p>") + f'</p><img src="cid:img{i}@seed"></body></html>'
        head.append(f'Content-Type: multipart/related; boundary="{b}"')
        parts = [
            f"--{b}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n",
            f"--{b}\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
            f"Content-ID: <img{i}@seed>\r\nContent-Disposition: inline\r\n\r\n"
            f"{b64_lines(image)}\r\n",
        ]
    else:
        data = rng.randbytes(1024 * 1024)
        head.append(f'Content-Type: multipart/mixed; boundary="{b}"')
        parts = [
            f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text_body(rng, 1)}\r\n",
            f"--{b}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="report{i}.bin"\r\n\r\n'
            f"{b64_lines(data)}\r\n",
        ]
    return "\r\n".join(head) + "\r\n\r\n" + "".join(parts) + f"--{b}--\r\n"


def addressing(i, rng, mailbox):
    """(To, Cc, expected project) of message i."""
    case = i % 6
    p = rng.choice(PROJECTS)
    if case in (0, 1):
        return f"{p}@{DOMAIN}", None, p
    if case == 2:  # sub-address: the +tag is stripped before lookup
        return f"{p}+ticket{i}@{DOMAIN.upper() if i % 12 == 2 else DOMAIN}", None, p
    if case == 3:  # a display name, an unknown recipient first, the project second
        return f'"Someone" <someone{i}@fabrikam.example>, "Team {p}" <{p}@{DOMAIN}>', None, p
    if case == 4:  # Cc only
        return f"partner{i}@fabrikam.example", f"{p}@{DOMAIN}", p
    return mailbox, None, DEFAULT  # no project address: the default route


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--mailbox", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--big", type=int, default=2, help="messages with a 1 MB attachment")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ca-bundle")
    ap.add_argument("--routes-out", required=True)
    ap.add_argument("--expect-out", required=True)
    args = ap.parse_args()

    ctx = ssl.create_default_context(cafile=args.ca_bundle) if args.ca_bundle else None
    url = f"{args.base_url.rstrip('/')}/_sandbox/admin"
    rng = random.Random(args.seed)
    big = set(rng.sample(range(args.count), min(args.big, args.count)))
    expected = {}
    for i in range(args.count):
        to, cc, project = addressing(i, rng, args.mailbox)
        kind = "big" if i in big else ("html" if i % 4 == 3 else "text")
        body = json.dumps({"op": "inject_mime", "to": [args.mailbox],
                           "mime": message(i, rng, to, cc, kind)}).encode()
        headers = {"Content-Type": "application/json"}
        if os.environ.get("SANDBOX_ADMIN_TOKEN"):
            headers["Authorization"] = f"Bearer {os.environ['SANDBOX_ADMIN_TOKEN']}"
        req = urllib.request.Request(url, data=body, method="POST", headers=headers)
        with urllib.request.urlopen(req, context=ctx) as r:
            out = json.loads(r.read())
        if args.mailbox not in out.get("delivered", []):
            raise SystemExit(f"message {i} was not delivered: {out}")
        expected[project] = expected.get(project, 0) + 1
    with open(args.routes_out, "w", encoding="utf-8") as f:
        json.dump(routes(), f, indent=2)
    with open(args.expect_out, "w", encoding="utf-8") as f:
        json.dump({"count": args.count, "routed": expected}, f, indent=2, sort_keys=True)
    print(f"seeded {args.count} messages into {args.mailbox}: {expected}", file=sys.stderr)


if __name__ == "__main__":
    main()
