#!/usr/bin/env python3
"""Real-client check: exchangelib, unchanged, against the sandbox's EWS endpoint.

Usage: exchangelib_check.py BASE_URL      (e.g. https://localhost:8443; set REQUESTS_CA_BUNDLE
                                          to the CA the sandbox wrote when it runs with --tls)

Gets an app-only token from the sandbox's token endpoint (client credentials, the demo app),
then with exchangelib impersonating megan.bowen@contoso.example: reads the inbox counts, lists
the inbox, fetches MIME, marks a message read, moves one to a new folder, deletes one, and sends
one (checking it arrives). Exits non-zero with a message on the first failure.

Messages are delivered through the admin API as JSON (`Content-Type: application/json`, the only
type it takes), with `Authorization: Bearer $SANDBOX_ADMIN_TOKEN` when that variable is set (a
sandbox bound beyond loopback requires its admin token).
"""
import json
import sys
import time
import urllib.parse
import urllib.request
import ssl
import os

from exchangelib import (IMPERSONATION, OAUTH2, Account, Configuration, Folder, Mailbox, Message,
                         OAuth2AuthorizationCodeCredentials, Version, Build)
from exchangelib.version import EXCHANGE_2016

APP = "00000000-0000-0000-0000-00000000d3e0"
SECRET = "demo-secret-do-not-use-in-production"  # public, demo-only sandbox secret
TENANT = "contoso.example"
MAILBOX = "megan.bowen@contoso.example"


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def post(url, data, headers=None):
    ctx = ssl.create_default_context(cafile=os.environ.get("REQUESTS_CA_BUNDLE"))
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST")
    with urllib.request.urlopen(req, context=ctx) as r:
        return json.loads(r.read() or b"null")


def token(base):
    body = urllib.parse.urlencode({
        "grant_type": "client_credentials",
        "client_id": APP,
        "client_secret": SECRET,
        "scope": "https://outlook.office365.com/.default",
    }).encode()
    t = post(f"{base}/{TENANT}/oauth2/v2.0/token", body,
             {"Content-Type": "application/x-www-form-urlencoded"})
    if "access_token" not in t:
        fail(f"no token: {t}")
    t["expires_at"] = time.time() + int(t.get("expires_in", 3599))
    return t


def inject(base, subject, n):
    """Delivers n messages to the mailbox through the sandbox admin API."""
    for i in range(n):
        mime = (f"From: Customer {i} <customer{i}@fabrikam.example>\r\nTo: {MAILBOX}\r\n"
                f"Subject: {subject} {i}\r\nMessage-ID: <exchangelib-{subject}-{i}@check>\r\n"
                f"Content-Type: text/plain; charset=utf-8\r\n\r\nbody {i}\r\n")
        headers = {"Content-Type": "application/json"}
        if os.environ.get("SANDBOX_ADMIN_TOKEN"):
            headers["Authorization"] = f"Bearer {os.environ['SANDBOX_ADMIN_TOKEN']}"
        post(f"{base}/_sandbox/admin", json.dumps(
            {"op": "inject_mime", "to": [MAILBOX], "mime": mime}).encode(), headers)


def main():
    if len(sys.argv) != 2:
        fail(__doc__)
    base = sys.argv[1].rstrip("/")
    inject(base, "check", 3)
    creds = OAuth2AuthorizationCodeCredentials(access_token=token(base))
    config = Configuration(service_endpoint=f"{base}/EWS/Exchange.asmx", credentials=creds,
                           auth_type=OAUTH2)
    account = Account(primary_smtp_address=MAILBOX, config=config, autodiscover=False,
                      access_type=IMPERSONATION)
    print(f"server version: {account.version}")

    inbox = account.inbox
    inbox.refresh()
    if (inbox.total_count, inbox.unread_count) != (3, 3):
        fail(f"counts: total {inbox.total_count}, unread {inbox.unread_count}, want 3 and 3")
    print(f"counts ok: {inbox.total_count} total, {inbox.unread_count} unread")

    items = list(inbox.filter(is_read=False).order_by("datetime_received"))
    subjects = [i.subject for i in items]
    if subjects != ["check 0", "check 1", "check 2"]:
        fail(f"listing: {subjects}")
    print(f"listing ok: {subjects}")

    mime = items[0].mime_content
    if b"body 0" not in mime or b"Message-ID: <exchangelib-check-0@check>" not in mime:
        fail(f"MIME: {mime[:200]!r}")
    print(f"MIME ok: {len(mime)} bytes")

    items[0].is_read = True
    items[0].save(update_fields=["is_read"])
    inbox.refresh()
    if inbox.unread_count != 2:
        fail(f"after mark read: {inbox.unread_count} unread")
    print("mark read ok")

    processed = Folder(parent=account.msg_folder_root, name="Processed by exchangelib")
    processed.save()
    items[1].move(processed)
    processed.refresh()
    if processed.total_count != 1:
        fail(f"after move: the folder has {processed.total_count} items")
    print("move ok")

    items[2].delete()
    inbox.refresh()
    if inbox.total_count != 1:
        fail(f"after delete: inbox has {inbox.total_count} items, want 1 (the read one)")
    print("delete ok")

    m = Message(account=account, subject="sent by exchangelib", body="hello from exchangelib",
                to_recipients=[Mailbox(email_address=MAILBOX)])
    m.send_and_save()
    got = [i for i in inbox.all() if i.subject == "sent by exchangelib"]
    if len(got) != 1:
        fail("the sent message did not arrive")
    sent = account.sent
    sent.refresh()  # folder objects are cached with the counts of their first lookup
    if sent.total_count != 1:
        fail(f"Sent Items holds {sent.total_count} messages, want 1")
    print("send ok")
    print("exchangelib check PASSED")


if __name__ == "__main__":
    main()
