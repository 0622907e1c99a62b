#!/usr/bin/env python3
"""The reply-extraction peers of `cargo xtask bench --replies` (issue #21 item 2).

Runs quotequail and mail-parser-reply, unchanged from PyPI (versions pinned in
requirements.txt), over the cases `m365-bench replies` prepared, and writes what each returned:

    reply_peers.py --input INPUT.jsonl --output OUTPUT.jsonl

INPUT.jsonl: one case a line, {"id", "language", "format": "text"|"html", "body", "text"}, where
`text` is the body as text (for HTML, made by the same converter our extractor uses, so that the
text-only peer reads the same lines). OUTPUT.jsonl: one line per case and peer,
{"id", "peer", "format": "text"|"html", "output"} or {"id", "peer", "error"}; the driver turns
HTML output into text with the same converter and compares it with the expected new text.

Each peer is called the way its documentation shows:
- quotequail `quote` / `quote_html` with quote_intro_line=True (the attribution line belongs to
  the quote), keeping the parts marked to be shown; for HTML the HTML is given;
- quotequail `unwrap` / `unwrap_html`: `text_top` / `html_top` of a reply or forward, the whole
  body when it finds nothing;
- mail-parser-reply `EmailReplyParser(languages=...).read(text).replies[0].body` (the latest
  reply without headers, signature and disclaimers), once with every language it knows (what a
  multilingual helpdesk would pass) and once told the case's language; HTML cases get the text.
"""

import argparse
import json
import sys
from importlib import metadata

import quotequail
from mailparser_reply import EmailReplyParser
from mailparser_reply.constants import MAIL_LANGUAGES

ALL_LANGUAGES = [lang for lang in MAIL_LANGUAGES if lang != "david"]


def quotequail_quote(case):
    if case["format"] == "html":
        parts = quotequail.quote_html(case["body"], quote_intro_line=True)
        fmt = "html"
    else:
        parts = quotequail.quote(case["body"], quote_intro_line=True)
        fmt = "text"
    shown = [text for expanded, text in parts if expanded]
    return fmt, "\n".join(shown)


def quotequail_unwrap(case):
    if case["format"] == "html":
        found = quotequail.unwrap_html(case["body"])
        if found is None:
            return "html", case["body"]
        return "html", found.get("html_top", "")
    found = quotequail.unwrap(case["body"])
    if found is None:
        return "text", case["body"]
    return "text", found.get("text_top", "")


def mail_parser_reply(languages):
    def run(case):
        langs = languages if languages is not None else [case["language"]]
        message = EmailReplyParser(languages=list(langs)).read(case["text"])
        if not message.replies:
            return "text", ""
        return "text", message.replies[0].body

    return run


PEERS = [
    ("quotequail quote", quotequail_quote),
    ("quotequail unwrap", quotequail_unwrap),
    ("mail-parser-reply", mail_parser_reply(ALL_LANGUAGES)),
    ("mail-parser-reply (told the language)", mail_parser_reply(None)),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    args = ap.parse_args()
    with open(args.input, encoding="utf-8") as f:
        cases = [json.loads(line) for line in f if line.strip()]
    with open(args.output, "w", encoding="utf-8") as out:
        versions = {
            "quotequail": metadata.version("quotequail"),
            "mail-parser-reply": metadata.version("mail-parser-reply"),
        }
        out.write(json.dumps({"versions": versions}) + "\n")
        for case in cases:
            for name, peer in PEERS:
                try:
                    fmt, output = peer(case)
                    line = {"id": case["id"], "peer": name, "format": fmt, "output": output}
                except Exception as e:  # a peer that fails on a case misses it
                    line = {"id": case["id"], "peer": name, "error": f"{type(e).__name__}: {e}"}
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
    print(f"reply peers: {len(cases)} cases, {len(PEERS)} peers -> {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
