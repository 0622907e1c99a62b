#!/usr/bin/env python3
"""Writes the labelled reply-extraction corpus: crates/handler/testdata/replies/corpus.jsonl.

Issue #21 item 2. Each case is a reply (or forward) body the way a client writes it: Outlook
desktop, Outlook on the web, Outlook mobile, Gmail, Apple Mail and Thunderbird, in plain text
and HTML, in eleven languages, with `expected` the exact new text (the customer's words, without
the quoted history and without the signature).

Labelling rules (the same for every case, see the corpus README):
- the new text is everything the sender wrote above the quote (or below it, when the sender
  answered below the quote), closing and typed name included ("Thanks,\\nAnn");
- the signature is what the client marks as one: a "-- " line and what follows, a mobile
  client's "Sent from my iPhone" / "Get Outlook for iOS" line, a signature element of the HTML
  (Gmail's gmail_signature, Thunderbird's moz-signature, Outlook's Signature div);
- the quoted history starts at the attribution line ("On ... wrote:"), the header block of
  Outlook ("From: ... Sent: ..."), its separator line, or a forward marker;
- a forward with a note: the note is the new text; a forward without one: the new text is "".

The shapes (attribution lines, header labels, forward markers, mobile signatures, HTML markup)
follow what each client writes in each language; the bodies are made up. Standard library only;
the output is deterministic. Run it from anywhere: python3 scripts/bench/make_reply_corpus.py
"""

import html
import json
import os
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "crates", "handler", "testdata", "replies", "corpus.jsonl")

AGENT = "Contoso Helpdesk"
AGENT_ADDR = "helpdesk@contoso.example"

# Per language (reply_corpus_languages.json, beside this script): the customer, reply bodies
# (paragraphs of lines), the agent's quoted message, and what each client writes in that
# language. sv, pl and zh, three more languages Outlook ships with, are for Outlook's header block
# and the mobile clients (EXTRA below) and have fewer fields.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "reply_corpus_languages.json"),
          encoding="utf-8") as f:
    L = json.load(f)


def expected_of(body):
    return "\n\n".join("\n".join(p) for p in body)


def plain(body):
    return "\n\n".join("\n".join(p) for p in body)


def dash_sig(lang):
    d = L[lang]
    return ["-- ", d["name"], d["company"], d["phone"]]


def esc(s):
    return html.escape(s, quote=False)


def outlook_block(lang, subject_prefix, cc=False, sep=None):
    d = L[lang]
    o = d["ol"]
    lines = []
    if sep:
        lines.append(sep)
    lines.append(f"{o['frm']} {AGENT} <{AGENT_ADDR}>")
    lines.append(f"{o['sent']} {o['date']}")
    lines.append(f"{o['to']} {d['name']} <{d['addr']}>")
    if cc:
        lines.append(f"{o['cc']} IT Team <it@contoso.example>")
    lines.append(f"{o['subj']} {subject_prefix} {d['subject']}")
    return lines


def quoted_gt(lines):
    return [("> " + l) if l else ">" for l in lines]


def elements(body, open_, close, blank=None):
    """A body the way an HTML editor writes it: each line as open_ + line + close, and between
    paragraphs an empty one, `blank` (by default open_ + "<br>" + close)."""
    if blank is None:
        blank = open_ + "<br>" + close
    out = []
    for i, p in enumerate(body):
        if i:
            out.append(blank)
        out.extend(open_ + esc(line) + close for line in p)
    return out


# --- HTML renderers, one per client's editor ---------------------------------------------

OUTLOOK_HEAD = (
    '<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
    'xmlns:w="urn:schemas-microsoft-com:office:word" xmlns:m="http://schemas.microsoft.com/office/2004/12/omml" '
    'xmlns="http://www.w3.org/TR/REC-html40">\n<head>\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n'
    '<meta name="Generator" content="Microsoft Word 15 (filtered medium)">\n<style><!--\n/* Font Definitions */\n'
    '@font-face\n\t{font-family:"Cambria Math";\n\tpanose-1:2 4 5 3 5 4 6 3 2 4;}\n'
    'p.MsoNormal, li.MsoNormal, div.MsoNormal\n\t{margin:0cm;\n\tfont-size:11.0pt;\n\tfont-family:"Calibri",sans-serif;}\n'
    '.MsoChpDefault\n\t{mso-style-type:export-only;}\n--></style>\n</head>\n'
)


def mso(body):
    return "\n".join(elements(body, '<p class="MsoNormal">', "<o:p></o:p></p>", '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>'))


def mso_lines(lines):
    return "\n".join(
        f'<p class="MsoNormal">{esc(l)}<o:p></o:p></p>' if l else '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
        for l in lines)


def outlook_desktop_html(lang, body, subject_prefix):
    d = L[lang]
    o = d["ol"]
    lang_attr = {"en": "EN-US", "de": "DE", "fr": "FR", "es": "ES", "it": "IT", "nl": "NL", "pt": "PT-BR",
                 "ja": "JA", "sv": "SV", "pl": "PL", "zh": "ZH-CN"}[lang]
    hdr = (f'<p class="MsoNormal"><b>{esc(o["frm"])}</b> {esc(AGENT)} &lt;{AGENT_ADDR}&gt; <br>'
           f'<b>{esc(o["sent"])}</b> {esc(o["date"])}<br>'
           f'<b>{esc(o["to"])}</b> {esc(d["name"])} &lt;{d["addr"]}&gt;<br>'
           f'<b>{esc(o["subj"])}</b> {esc(subject_prefix)} {esc(d["subject"])}<o:p></o:p></p>')
    return (OUTLOOK_HEAD + f'<body lang="{lang_attr}" link="#0563C1" vlink="#954F72" style="word-wrap:break-word">\n'
            '<div class="WordSection1">\n' + mso(body) + '\n<p class="MsoNormal"><o:p>&nbsp;</o:p></p>\n'
            '<div>\n<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">\n'
            + hdr + '\n</div>\n</div>\n<p class="MsoNormal"><o:p>&nbsp;</o:p></p>\n'
            + mso_lines(d["quoted"]) + '\n</div>\n</body>\n</html>\n')


OWA_STYLE = ('font-family: Aptos, Aptos_EmbeddedFont, Aptos_MSFontService, Calibri, Helvetica, sans-serif; '
             'font-size: 12pt; color: rgb(0, 0, 0);')


def owa_divs(body):
    return "\n".join(elements(body, f'<div class="elementToProof" style="{OWA_STYLE}">', "</div>"))


def owa_quote_block(lang, subject_prefix, cc=False):
    d = L[lang]
    o = d["ol"]
    cc_line = f'<b>{esc(o["cc"])}</b> IT Team &lt;it@contoso.example&gt;<br>' if cc else ""
    q = "".join(f'<div>{esc(l)}</div>' if l else '<div><br></div>' for l in d["quoted"])
    return ('<hr style="display:inline-block;width:98%" tabindex="-1">\n'
            '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt" color="#000000">'
            f'<b>{esc(o["frm"])}</b> {esc(AGENT)} &lt;{AGENT_ADDR}&gt;<br>'
            f'<b>{esc(o["sent"])}</b> {esc(o["date"])}<br>'
            f'<b>{esc(o["to"])}</b> {esc(d["name"])} &lt;{d["addr"]}&gt;<br>{cc_line}'
            f'<b>{esc(o["subj"])}</b> {esc(subject_prefix)} {esc(d["subject"])}</font>\n<div>&nbsp;</div>\n</div>\n'
            f'<div>\n<div dir="ltr">{q}</div>\n</div>\n')


def owa_html(lang, body, subject_prefix, signature=None, cc=False):
    sig = ""
    if signature:
        sig = ('<div id="Signature" class="elementToProof"><div style="' + OWA_STYLE + '">'
               + "<br>".join(esc(s) for s in signature) + '</div></div>\n')
    return ('<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n'
            '<style type="text/css" style="display:none;"> P {margin-top:0;margin-bottom:0;} </style>\n'
            '</head>\n<body dir="ltr">\n' + owa_divs(body) + "\n"
            f'<div class="elementToProof" style="{OWA_STYLE}"><br></div>\n' + sig
            + '<div id="appendonsend"></div>\n' + owa_quote_block(lang, subject_prefix, cc) + '</body>\n</html>\n')


def outlook_mobile_html(lang, body, subject_prefix, android):
    d = L[lang]
    divs = elements(body, '<div dir="auto">', "</div>")
    get = d["get_outlook_html"][1 if android else 0]
    return ('<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n</head>\n<body>\n'
            + "\n".join(divs) + '\n<div dir="auto"><br></div>\n'
            '<div id="ms-outlook-mobile-signature" dir="auto"><div dir="auto">' + get + '</div></div>\n'
            '<div id="mail-editor-reference-message-container" dir="auto">' + owa_quote_block(lang, subject_prefix)
            + '</div>\n</body>\n</html>\n')


def outlook_mobile_text(lang, body, android):
    d = L[lang]
    get, link = (d["get_outlook"][1], "https://aka.ms/AAb9ysg") if android else (d["get_outlook"][0], "https://aka.ms/o0ukef")
    return (plain(body) + "\n\n" + get + f"<{link}>\n" + "\n".join(outlook_block(lang, d["ol"]["re"], sep="_" * 32))
            + "\n\n" + "\n".join(d["quoted"]) + "\n")


def gmail_divs(body):
    return "".join(elements(body, "<div>", "</div>"))


def gmail_attr_html(attr):
    a = esc(attr).replace(f"&lt;{AGENT_ADDR}&gt;", f'&lt;<a href="mailto:{AGENT_ADDR}">{AGENT_ADDR}</a>&gt;')
    return a


def gmail_html(lang, body, signature=None):
    d = L[lang]
    sig = ""
    if signature:
        sig = ('<br clear="all"><div><br></div><span class="gmail_signature_prefix">-- </span><br>'
               '<div dir="ltr" class="gmail_signature" data-smartmail="gmail_signature"><div dir="ltr">'
               + "<br>".join(esc(s) for s in signature) + "</div></div>")
    q = "".join(f"{esc(l)}<br>" if l else "<br>" for l in d["quoted"])
    return ('<div dir="ltr">' + gmail_divs(body) + sig + '</div><br>'
            '<div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">'
            + gmail_attr_html(d["gmail"]) + '<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;'
            'border-left:1px solid rgb(204,204,204);padding-left:1ex">' + q + '</blockquote></div>\n')


def gmail_fwd_html(lang, note):
    d = L[lang]
    mark, frm = d["gmail_fwd"]
    q = "".join(f"{esc(l)}<br>" if l else "<br>" for l in d["quoted"])
    return ('<div dir="ltr">' + gmail_divs(note) + '<br><div class="gmail_quote gmail_quote_container">'
            '<div dir="ltr" class="gmail_attr">' + esc(mark) + '<br>' + esc(frm) + ' <strong class="gmail_sendername" dir="auto">'
            + esc(AGENT) + '</strong> <span dir="auto">&lt;<a href="mailto:' + AGENT_ADDR + '">' + AGENT_ADDR
            + '</a>&gt;</span><br>Date: Tue, Dec 3, 2024 at 10:15\u202fAM<br>Subject: ' + esc(d["subject"])
            + '<br>To: &lt;<a href="mailto:support@fabrikam.example">support@fabrikam.example</a>&gt;<br></div><br><br>'
            + q + '</div></div>\n')


def apple_html(lang, body, ios):
    d = L[lang]
    divs = elements(body, '<div dir="ltr">', "</div>")
    q = "".join(f'<div dir="ltr">{esc(l)}</div>' if l else '<div dir="ltr"><br></div>' for l in d["quoted"])
    if ios:
        return ('<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head><body dir="auto">'
                + "".join(divs) + '<div dir="ltr"><br id="lineBreakAtBeginningOfSignature"><div dir="ltr">'
                + esc(d["iphone"]) + '</div><div dir="ltr"><br><blockquote type="cite">' + esc(d["apple_ios"])
                + '<br><br></blockquote></div><blockquote type="cite">' + q + '</blockquote></div></body></html>\n')
    return ('<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head>'
            '<body style="overflow-wrap: break-word; -webkit-nbsp-mode: space; line-break: after-white-space;">'
            + "".join(divs) + '<div><br><blockquote type="cite"><div>' + esc(d["apple"])
            + '</div><br class="Apple-interchange-newline"><div>' + q + '</div></blockquote></div><br></body></html>\n')


def tb_html(lang, body, signature=None):
    d = L[lang]
    ps = "".join("<p>" + "<br>\n".join(esc(l) for l in p) + "</p>\n" for p in body)
    sig = ""
    if signature:
        sig = '<pre class="moz-signature" cols="72">' + esc("\n".join(signature)) + "</pre>\n"
    q = "<br>\n".join(esc(l) for l in d["quoted"])
    return ('<!DOCTYPE html>\n<html>\n  <head>\n    <meta http-equiv="Content-Type" content="text/html; charset=UTF-8">\n'
            '  </head>\n  <body>\n    ' + ps + sig + '    <div class="moz-cite-prefix">' + esc(d["tb"]) + '<br>\n    </div>\n'
            '    <blockquote type="cite" cite="mid:c0ffee.1042@contoso.example">\n      <pre class="moz-quote-pre" wrap="">'
            + q + '</pre>\n    </blockquote>\n  </body>\n</html>\n')


# --- the cases ----------------------------------------------------------------------------

cases = []


def add(client, shape, lang, fmt, body, expected, signature=None):
    case = dict(id=f"{client}-{shape}-{lang}-{fmt}", client=client, language=lang, format=fmt,
                body=body, expected=expected)
    if signature:
        case["signature"] = signature
    cases.append(case)


MAIN = ["en", "de", "fr", "es", "it", "nl", "pt", "ja"]
EXTRA = ["sv", "pl", "zh"]


def b(lang, k):
    bodies = L[lang]["bodies"]
    return bodies[k % len(bodies)]


for li, lang in enumerate(MAIN + EXTRA):
    d = L[lang]
    o = d["ol"]
    main = lang in MAIN
    k = li
    sig_lines = dash_sig(lang)
    sig_text = "\n".join(sig_lines[1:])

    # Outlook desktop, plain text: the header block, no separator line (Word's text rendering).
    body = b(lang, k)
    text = plain(body) + "\n\n" + "\n".join(outlook_block(lang, o["re"])) + "\n\n" + "\n".join(d["quoted"]) + "\n"
    add("outlook-desktop", "header", lang, "text", text, expected_of(body))

    # Outlook desktop, plain-text reply to a plain-text mail: "-----Original Message-----".
    body = b(lang, k + 1)
    text = plain(body) + "\n\n" + "\n".join(outlook_block(lang, o["re"], cc=True, sep=o["orig"])) + "\n\n" + "\n".join(d["quoted"]) + "\n"
    add("outlook-desktop", "original-message", lang, "text", text, expected_of(body))

    # Outlook on the web, plain text: the underscore line, then the header block.
    body = b(lang, k + 2)
    text = plain(body) + "\n\n" + "\n".join(outlook_block(lang, o["re"], sep="_" * 32)) + "\n\n" + "\n".join(d["quoted"]) + "\n"
    add("outlook-web", "separator", lang, "text", text, expected_of(body))

    # Outlook on the web, HTML, with a signature.
    body = b(lang, k)
    sig = [d["name"], d["company"]]
    add("outlook-web", "signature", lang, "html", owa_html(lang, body, o["re"], signature=sig), expected_of(body), "\n".join(sig))

    # Outlook mobile (iOS), plain text.
    body = b(lang, k + 1)
    add("outlook-mobile", "ios", lang, "text", outlook_mobile_text(lang, body, android=False), expected_of(body),
        d["get_outlook"][0])

    # Gmail, plain text, the attribution on one line.
    body = b(lang, k + 2)
    text = plain(body) + "\n\n" + d["gmail"] + "\n\n" + "\n".join(quoted_gt(d["quoted"])) + "\n"
    add("gmail", "attribution", lang, "text", text, expected_of(body))

    # Apple Mail on the iPhone, plain text.
    body = b(lang, k)
    text = plain(body) + "\n\n" + d["iphone"] + "\n\n> " + d["apple"] + "\n> \n" + "\n".join(quoted_gt(d["quoted"])) + "\n"
    add("apple-mail", "iphone", lang, "text", text, expected_of(body), d["iphone"])

    if not main:
        # Outlook desktop HTML in the extra languages too.
        body = b(lang, k + 1)
        add("outlook-desktop", "html", lang, "html", outlook_desktop_html(lang, body, o["re"]), expected_of(body))
        continue

    # Outlook desktop, HTML (Word): the border-top division, then the header paragraph.
    body = b(lang, k + 1)
    add("outlook-desktop", "html", lang, "html", outlook_desktop_html(lang, body, o["re"]), expected_of(body))

    # Outlook desktop, a forward with a note (plain text).
    note = d["note"]
    text = plain(note) + "\n\n" + "\n".join(outlook_block(lang, o["fw"], sep="_" * 32)) + "\n\n" + "\n".join(d["quoted"]) + "\n"
    add("outlook-desktop", "forward", lang, "text", text, expected_of(note))

    # Outlook on the web, HTML, no signature, a Cc line.
    body = b(lang, k + 2)
    add("outlook-web", "plain-html", lang, "html", owa_html(lang, body, o["re"], cc=True), expected_of(body))

    # Outlook mobile (Android), HTML.
    body = b(lang, k)
    add("outlook-mobile", "android", lang, "html", outlook_mobile_html(lang, body, o["re"], android=True), expected_of(body),
        d["get_outlook"][1])

    # Outlook mobile (Android), plain text.
    body = b(lang, k + 2)
    add("outlook-mobile", "android", lang, "text", outlook_mobile_text(lang, body, android=True), expected_of(body),
        d["get_outlook"][1])

    # Gmail, plain text, the attribution wrapped onto two lines, and a "-- " signature.
    body = b(lang, k + 1)
    wrapped = textwrap.wrap(d["gmail"], 60, break_long_words=False, break_on_hyphens=False)
    if len(wrapped) < 2:
        head, _, tail = d["gmail"].rpartition(" <")
        wrapped = [head, "<" + tail]
    text = (plain(body) + "\n\n" + "\n".join(sig_lines) + "\n\n" + "\n".join(wrapped) + "\n\n"
            + "\n".join(quoted_gt(d["quoted"])) + "\n")
    add("gmail", "wrapped-attribution", lang, "text", text, expected_of(body), sig_text)

    # Gmail, HTML, with a signature.
    body = b(lang, k)
    sig = [d["name"], d["company"], d["phone"]]
    add("gmail", "signature", lang, "html", gmail_html(lang, body, signature=sig), expected_of(body), "\n".join(sig))

    # Gmail, HTML, no signature.
    body = b(lang, k + 1)
    add("gmail", "plain-html", lang, "html", gmail_html(lang, body), expected_of(body))

    # Gmail, a forward with a note, plain text.
    mark, frm = d["gmail_fwd"]
    text = (plain(note) + "\n\n" + mark + "\n" + f"{frm} {AGENT} <{AGENT_ADDR}>\nDate: Tue, Dec 3, 2024 at 10:15\u202fAM\n"
            f"Subject: {d['subject']}\nTo: <support@fabrikam.example>\n\n\n" + "\n".join(d["quoted"]) + "\n")
    add("gmail", "forward", lang, "text", text, expected_of(note))

    # Gmail, a forward with a note, HTML.
    add("gmail", "forward", lang, "html", gmail_fwd_html(lang, note), expected_of(note))

    # Apple Mail on a Mac, plain text.
    body = b(lang, k + 2)
    text = plain(body) + "\n\n" + d["apple"] + "\n\n" + "\n".join(quoted_gt(d["quoted"])) + "\n"
    add("apple-mail", "mac", lang, "text", text, expected_of(body))

    # Apple Mail on the iPhone, HTML.
    body = b(lang, k + 1)
    add("apple-mail", "iphone", lang, "html", apple_html(lang, body, ios=True), expected_of(body), d["iphone"])

    # Apple Mail on a Mac, HTML.
    body = b(lang, k)
    add("apple-mail", "mac", lang, "html", apple_html(lang, body, ios=False), expected_of(body))

    # Apple Mail, a forward with a note.
    mark, f_, s_, dt_, t_ = d["apple_fwd"]
    text = (plain(note) + "\n\n" + mark + "\n\n" + f"{f_} {AGENT} <{AGENT_ADDR}>\n{s_} {d['subject']}\n"
            f"{dt_} 3 December 2024 at 10:15:00 CET\n{t_} {d['name']} <{d['addr']}>\n\n" + "\n".join(d["quoted"]) + "\n\n")
    add("apple-mail", "forward", lang, "text", text, expected_of(note))

    # Thunderbird, plain text, a "-- " signature above the quote.
    body = b(lang, k + 1)
    text = plain(body) + "\n\n" + "\n".join(sig_lines) + "\n\n" + d["tb"] + "\n" + "\n".join(quoted_gt(d["quoted"])) + "\n"
    add("thunderbird", "signature", lang, "text", text, expected_of(body), sig_text)

    # Thunderbird, HTML, the moz-signature.
    body = b(lang, k + 2)
    add("thunderbird", "signature", lang, "html", tb_html(lang, body, signature=sig_lines), expected_of(body), sig_text)

    # Thunderbird, plain text, answered below the quote.
    body = b(lang, k)
    text = d["tb"] + "\n" + "\n".join(quoted_gt(d["quoted"])) + "\n\n" + plain(body) + "\n\n" + "\n".join(sig_lines) + "\n"
    add("thunderbird", "bottom-post", lang, "text", text, expected_of(body), sig_text)

    # Thunderbird, a forward with a note.
    mark, s_, dt_, f_, t_ = d["tb_fwd"]
    text = (plain(note) + "\n\n\n" + mark + "\n" + f"{s_} \t{d['subject']}\n{dt_} \tTue, 3 Dec 2024 10:15:00 +0100\n"
            f"{f_} \t{AGENT} <{AGENT_ADDR}>\n{t_} \t{d['name']} <{d['addr']}>\n\n\n\n" + "\n".join(d["quoted"]) + "\n")
    add("thunderbird", "forward", lang, "text", text, expected_of(note))

    # A new message, no quote at all, from the iPhone: all of it but the signature.
    body = b(lang, k + 2)
    add("apple-mail", "no-quote", lang, "text", plain(body) + "\n\n" + d["iphone"] + "\n", expected_of(body), d["iphone"])

    # Gmail, a reply to a reply: two levels of quoting, the attribution of each.
    body = b(lang, k + 1)
    inner = d["quoted"] + ["", d["gmail"].replace("Contoso Helpdesk <helpdesk@contoso.example>", f"{d['name']} <{d['addr']}>")]
    inner += quoted_gt(expected_of(b(lang, k)).split("\n"))
    text = plain(body) + "\n\n" + d["gmail"] + "\n\n" + "\n".join(quoted_gt(inner)) + "\n"
    add("gmail", "nested", lang, "text", text, expected_of(body))


# Second batch, written after the extractor's first version and measured before any change to it.
MAC = {
    "en": ("From:", "Date:", "To:", "Subject:", "Tuesday, 3 December 2024 at 10:15"),
    "de": ("Von:", "Datum:", "An:", "Betreff:", "Dienstag, 3. Dezember 2024 um 10:15"),
    "fr": ("De\u00a0:", "Date\u00a0:", "À\u00a0:", "Objet\u00a0:", "mardi 3 décembre 2024 à 10:15"),
}
GMAIL_APP = {
    "en": "On Tue, 3 Dec 2024, 10:15 Contoso Helpdesk, <helpdesk@contoso.example> wrote:",
    "de": "Contoso Helpdesk <helpdesk@contoso.example> schrieb am Di., 3. Dez. 2024, 10:15:",
    "fr": "Le mar. 3 déc. 2024, 10:15, Contoso Helpdesk <helpdesk@contoso.example> a écrit :",
    "es": "El mar., 3 dic. 2024 10:15, Contoso Helpdesk <helpdesk@contoso.example> escribió:",
    "it": "Il mar 3 dic 2024, 10:15 Contoso Helpdesk <helpdesk@contoso.example> ha scritto:",
    "nl": "Op di 3 dec. 2024 10:15 schreef Contoso Helpdesk <helpdesk@contoso.example>:",
    "pt": "Em ter., 3 de dez. de 2024 10:15, Contoso Helpdesk <helpdesk@contoso.example> escreveu:",
    "ja": "2024年12月3日(火) 10:15 Contoso Helpdesk <helpdesk@contoso.example>:",
}
for li, lang in enumerate(MAIN):
    d = L[lang]
    o = d["ol"]
    k = li + 1
    # Outlook 2010-2016 plain text: the sender with "[mailto:…]".
    if lang != "ja":
        body = b(lang, k + 2)
        block = [f"{o['frm']} {AGENT} [mailto:{AGENT_ADDR}] ", f"{o['sent']} {o['date']}",
                 f"{o['to']} {d['name']}", f"{o['subj']} {o['re']} {d['subject']}"]
        text = plain(body) + "\n\n" + "\n".join(block) + "\n\n" + "\n".join(d["quoted"]) + "\n"
        add("outlook-desktop", "mailto", lang, "text", text, expected_of(body))
    # Outlook for Mac, plain text: "Date:" in place of "Sent:".
    if lang in MAC:
        f_, dt_, t_, s_, when = MAC[lang]
        body = b(lang, k)
        block = [f"{f_} {AGENT} <{AGENT_ADDR}>", f"{dt_} {when}", f"{t_} {d['name']} <{d['addr']}>",
                 f"{s_} {o['re']} {d['subject']}"]
        text = plain(body) + "\n\n" + "\n".join(block) + "\n\n" + "\n".join(d["quoted"]) + "\n"
        add("outlook-desktop", "mac", lang, "text", text, expected_of(body))
        # Thunderbird, HTML, answered below the quote.
        body = b(lang, k + 1)
        ps = "".join("<p>" + "<br>\n".join(esc(l) for l in p) + "</p>\n" for p in body)
        q = "<br>\n".join(esc(l) for l in d["quoted"])
        sig = dash_sig(lang)
        html_ = ('<!DOCTYPE html>\n<html>\n  <head>\n    <meta http-equiv="Content-Type" content="text/html; charset=UTF-8">\n'
                 '  </head>\n  <body>\n    <div class="moz-cite-prefix">' + esc(d["tb"]) + '<br>\n    </div>\n'
                 '    <blockquote type="cite" cite="mid:c0ffee.1042@contoso.example">\n      <pre class="moz-quote-pre" wrap="">'
                 + q + '</pre>\n    </blockquote>\n    ' + ps + '<pre class="moz-signature" cols="72">' + esc("\n".join(sig))
                 + '</pre>\n  </body>\n</html>\n')
        add("thunderbird", "bottom-post", lang, "html", html_, expected_of(body), "\n".join(sig[1:]))
    # Gmail, plain text, wrapped at 76 columns as the web client's text part is.
    body = b(lang, k)
    wrapped = textwrap.wrap(d["gmail"], 76, break_long_words=False, break_on_hyphens=False)
    text = plain(body) + "\n\n" + "\n".join(wrapped) + "\n\n" + "\n".join(quoted_gt(d["quoted"])) + "\n"
    add("gmail", "wrapped-76", lang, "text", text, expected_of(body))
    # The Gmail app on Android, plain text.
    body = b(lang, k + 1)
    text = plain(body) + "\n\n" + GMAIL_APP[lang] + "\n\n" + "\n".join(quoted_gt(d["quoted"])) + "\n"
    add("gmail", "android-app", lang, "text", text, expected_of(body))


# Third batch: shapes seen in other projects' public test fixtures (quotequail's, mail-parser-
# reply's), written here in our own words and measured before any change to the extractor.
GMAIL_LT = {  # Gmail's text part wrapping inside the address: "Name <" / "addr>:"
    "en": ("On Tue, 3 Dec 2024 at 10:15, Contoso Helpdesk <", "helpdesk@contoso.example> wrote:"),
    "de": ("Am Di., 3. Dez. 2024, 10:15 schrieb Contoso Helpdesk <", "helpdesk@contoso.example>:"),
    "fr": ("Le mar. 3 déc. 2024 à 10:15, Contoso Helpdesk <", "helpdesk@contoso.example> a écrit :"),
    "es": ("El mar, 3 dic 2024 a las 10:15, Contoso Helpdesk (<", "helpdesk@contoso.example>) escribió:"),
    "it": ("Il giorno mar 3 dic 2024 alle ore 10:15 Contoso Helpdesk <", "helpdesk@contoso.example> ha scritto:"),
    "nl": ("Op di 3 dec 2024 om 10:15 schreef Contoso Helpdesk <", "helpdesk@contoso.example>:"),
    "ja": ("2024年12月3日(火) 10:15 Contoso Helpdesk <", "helpdesk@contoso.example>:"),
}
for li, lang in enumerate(GMAIL_LT):
    d = L[lang]
    body = b(lang, li + 2)
    a, z = GMAIL_LT[lang]
    text = plain(body) + "\n\n\n" + a + "\n" + z + "\n\n" + "\n".join(quoted_gt(d["quoted"])) + "\n"
    add("gmail", "wrapped-address", lang, "text", text, expected_of(body))
# Apple Mail's attribution over three lines (format=flowed text unwrapped by a plain reader).
for lang, lines_ in [("en", ["On Dec 3, 2024, at 10:15 AM, Contoso Helpdesk", "<helpdesk@contoso.example>", "wrote:"]),
                     ("de", ["Am 03.12.2024 um 10:15 schrieb Contoso Helpdesk", "<helpdesk@contoso.example>:"])]:
    body = b(lang, 0)
    text = plain(body) + "\n\n" + "\n".join(lines_) + "\n\n" + "\n".join(quoted_gt(L[lang]["quoted"])) + "\n"
    add("apple-mail", "wrapped-attribution", lang, "text", text, expected_of(body))
# Outlook 2010 (Word 14) HTML forward with a note: Tahoma spans, border-top #B5C4DF.
for lang in ["en", "de", "fr"]:
    d = L[lang]
    o = d["ol"]
    note = d["note"]
    span = '<span style="font-size:10.0pt;font-family:&quot;Tahoma&quot;,&quot;sans-serif&quot;">'
    html_ = (OUTLOOK_HEAD.replace("Word 15", "Word 14") + '<body lang="EN-US" link="blue" vlink="purple"><div class="WordSection1">'
             + "".join(f'<p class="MsoNormal"><span style="color:#1F497D">{esc(l)}<o:p></o:p></span></p>' for p_ in note for l in p_)
             + '<p class="MsoNormal"><span style="color:#1F497D"><o:p>&nbsp;</o:p></span></p>'
             '<div><div style="border:none;border-top:solid #B5C4DF 1.0pt;padding:3.0pt 0in 0in 0in"><p class="MsoNormal"><b>'
             + span + esc(o["frm"]) + '</span></b>' + span + f' {esc(AGENT)} [mailto:{AGENT_ADDR}] <br><b>{esc(o["sent"])}</b> {esc(o["date"])}<br>'
             f'<b>{esc(o["to"])}</b>&nbsp;{esc(d["name"])}<br><b>{esc(o["subj"])}</b> {esc(o["fw"])} {esc(d["subject"])}<o:p></o:p></span></p></div></div>'
             '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>' + mso_lines(d["quoted"]) + '</div></body></html>\n')
    add("outlook-desktop", "word14-forward", lang, "html", html_, expected_of(note))
# Signatures other phones add.
PHONE_SIGS = [
    ("en", "Sent from my Samsung Galaxy smartphone."),
    ("de", "Von meinem Samsung Galaxy Smartphone gesendet."),
    ("fr", "Envoyé de mon appareil Galaxy"),
    ("es", "Enviado desde mi smartphone Samsung Galaxy."),
    ("en", "Sent from Mail for Windows"),
    ("it", "Inviato dal mio dispositivo Galaxy"),
    ("nl", "Verzonden vanaf mijn Galaxy"),
    ("pt", "Enviado do meu smartphone Galaxy"),
]
for n, (lang, sig) in enumerate(PHONE_SIGS):
    d = L[lang]
    body = b(lang, n)
    text = plain(body) + "\n\n" + sig + "\n\n" + d["gmail"] + "\n\n" + "\n".join(quoted_gt(d["quoted"])) + "\n"
    add("gmail", f"phone-signature-{n}", lang, "text", text, expected_of(body), sig)
# A reply whose own text has a line of dashes and a line starting with "From:" (a log excerpt).
add("thunderbird", "log-excerpt", "en", "text",
    "Hi Tom,\n\nthe scanner log says:\n\n---\nFrom: scanner@fabrikam.example\nStatus: E-42 (SMTP auth failed)\n---\n\nAnn\n\n"
    + L["en"]["tb"] + "\n" + "\n".join(quoted_gt(L["en"]["quoted"])) + "\n",
    "Hi Tom,\n\nthe scanner log says:\n\n---\nFrom: scanner@fabrikam.example\nStatus: E-42 (SMTP auth failed)\n---\n\nAnn")


# A few shapes met in real mailboxes, in English and German.
add("gmail", "bottom-post", "en", "text",
    L["en"]["gmail"] + "\n\n" + "\n".join(quoted_gt(L["en"]["quoted"])) + "\n\nIt is E-42, as in my first mail.\n\nAnn\n",
    "It is E-42, as in my first mail.\n\nAnn")
add("gmail", "forward-no-note", "en", "text",
    "---------- Forwarded message ---------\nFrom: Contoso Helpdesk <helpdesk@contoso.example>\nDate: Tue, Dec 3, 2024 at 10:15\u202fAM\n"
    "Subject: [HELP-1042] Scanner error\nTo: <support@fabrikam.example>\n\n\n" + "\n".join(L["en"]["quoted"]) + "\n", "")
add("outlook-desktop", "wrote-in-text", "en", "text",
    "Hi Tom,\n\nmy colleague wrote: \"the scanner is fine\" but it is not.\nOn Monday it worked, on Tuesday it did not.\n\nAnn\n\n"
    + "\n".join(outlook_block("en", "RE:")) + "\n\n" + "\n".join(L["en"]["quoted"]) + "\n",
    "Hi Tom,\n\nmy colleague wrote: \"the scanner is fine\" but it is not.\nOn Monday it worked, on Tuesday it did not.\n\nAnn")
add("outlook-desktop", "header-in-text", "de", "text",
    "Hallo Tom,\n\nim Betreff steht die falsche Nummer.\nVon: wem kam die Mail? An: wen ging sie?\n\nAnna\n\n"
    + "\n".join(outlook_block("de", "AW:")) + "\n\n" + "\n".join(L["de"]["quoted"]) + "\n",
    "Hallo Tom,\n\nim Betreff steht die falsche Nummer.\nVon: wem kam die Mail? An: wen ging sie?\n\nAnna")
add("thunderbird", "no-quote", "en", "text",
    "Hello,\n\nthe badge reader at gate B rejects my card since this morning.\n\nAnn\n\n-- \nAnn Example\nFabrikam Ltd.\n",
    "Hello,\n\nthe badge reader at gate B rejects my card since this morning.\n\nAnn", "Ann Example\nFabrikam Ltd.")
add("gmail", "no-quote", "de", "html",
    '<div dir="ltr"><div>Hallo,</div><div><br></div><div>der Kartenleser am Tor B nimmt meine Karte seit heute früh nicht mehr.</div><div><br></div><div>Anna</div></div>\n',
    "Hallo,\n\nder Kartenleser am Tor B nimmt meine Karte seit heute früh nicht mehr.\n\nAnna")
add("outlook-web", "interleaved-marker", "en", "text",
    "Answers below in the text.\n\n" + "\n".join(outlook_block("en", "RE:", sep="_" * 32)) + "\n\n" + "\n".join(L["en"]["quoted"]) + "\n",
    "Answers below in the text.")
add("apple-mail", "ipad", "fr", "text",
    "Merci, c'est réglé.\n\nEnvoyé de mon iPad\n\n> " + L["fr"]["apple"] + "\n> \n" + "\n".join(quoted_gt(L["fr"]["quoted"])) + "\n",
    "Merci, c'est réglé.", "Envoyé de mon iPad")

ids = [c["id"] for c in cases]
dupes = {i for i in ids if ids.count(i) > 1}
assert not dupes, dupes

os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w", encoding="utf-8", newline="\n") as f:
    for c in cases:
        f.write(json.dumps(c, ensure_ascii=False) + "\n")
print(f"{len(cases)} cases -> {os.path.relpath(OUT, ROOT)}")
