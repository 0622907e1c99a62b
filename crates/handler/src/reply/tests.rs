use super::*;

fn new_text(text: &str) -> String {
    extract_reply(text).new_text
}

#[test]
fn outlook_header_blocks_in_several_languages() {
    let cases = [
        "From: Contoso <h@contoso.example>\nSent: Tuesday, December 3, 2024 10:15 AM\nTo: Ann\nSubject: RE: x",
        "Von: Contoso <h@contoso.example>\nGesendet: Dienstag, 3. Dezember 2024 10:15\nAn: Anna\nBetreff: AW: x",
        "De\u{a0}: Contoso\nEnvoyé\u{a0}: mardi 3 décembre 2024 10:15\nÀ\u{a0}: Anne\nObjet\u{a0}: RE: x",
        "De: Contoso\nEnviado el: martes, 3 de diciembre de 2024 10:15\nPara: Ana\nAsunto: RE: x",
        "Da: Contoso\nInviato: martedì 3 dicembre 2024 10:15\nA: Anna\nOggetto: R: x",
        "Van: Contoso\nVerzonden: dinsdag 3 december 2024 10:15\nAan: Anke\nOnderwerp: RE: x",
        "De: Contoso\nEnviada: terça-feira, 3 de dezembro de 2024 10:15\nPara: Ana\nAssunto: RE: x",
        "Od: Contoso\nWysłano: wtorek, 3 grudnia 2024 10:15\nDo: Anna\nTemat: RE: x",
        "Från: Contoso\nSkickat: den 3 december 2024 10:15\nTill: Anna\nÄmne: SV: x",
        "差出人: Contoso\n送信日時: 2024年12月3日 10:15\n宛先: 山田\n件名: RE: x",
        "发件人: Contoso\n发送时间: 2024年12月3日 10:15\n收件人: 王芳\n主题: 回复: x",
    ];
    for block in cases {
        let reply = extract_reply(&format!("Works now.\n\n{block}\n\nold text\n"));
        assert_eq!(reply.new_text, "Works now.", "{block}");
        assert_eq!(reply.quote_start, Some(QuoteStart::HeaderBlock), "{block}");
        assert!(reply.quoted.unwrap().ends_with("old text"));
    }
}

#[test]
fn separators_and_original_message_lines() {
    let owa =
        "Fine.\n\n________________________________\nFrom: A\nSent: today\nTo: B\nSubject: x\n\nold";
    assert_eq!(new_text(owa), "Fine.");
    for marker in [
        "-----Original Message-----",
        "-----Ursprüngliche Nachricht-----",
        "-----Message d'origine-----",
        "-----Mensaje original-----",
        "-----Messaggio originale-----",
        "-----Oorspronkelijk bericht-----",
        "-----Mensagem original-----",
        "----- Original Message -----",
    ] {
        let reply = extract_reply(&format!("Fine.\n\n{marker}\nFrom: A\nSent: today\n\nold"));
        assert_eq!(reply.new_text, "Fine.", "{marker}");
        assert_eq!(reply.quote_start, Some(QuoteStart::OriginalMessage));
    }
}

#[test]
fn attribution_lines_in_several_languages() {
    let cases = [
        "On Tue, Dec 3, 2024 at 10:15\u{202f}AM Contoso <h@contoso.example> wrote:",
        "Am Di., 3. Dez. 2024 um 10:15 Uhr schrieb Contoso <h@contoso.example>:",
        "Le mar. 3 déc. 2024 à 10:15, Contoso <h@contoso.example> a écrit :",
        "El mar, 3 dic 2024 a las 10:15, Contoso (<h@contoso.example>) escribió:",
        "Il giorno mar 3 dic 2024 alle ore 10:15 Contoso <h@contoso.example> ha scritto:",
        "Op di 3 dec 2024 om 10:15 schreef Contoso <h@contoso.example>:",
        "Op 3 dec. 2024 om 10:15 heeft Contoso <h@contoso.example> het volgende geschreven:",
        "Em ter., 3 de dez. de 2024 às 10:15, Contoso <h@contoso.example> escreveu:",
        "2024年12月3日(火) 10:15 Contoso <h@contoso.example>:",
        "2024/12/03 10:15、Contoso <h@contoso.example>のメール:",
        "Den tis 3 dec. 2024 kl 10:15 skrev Contoso <h@contoso.example>:",
        "wt., 3 gru 2024 o 10:15 Contoso <h@contoso.example> napisał(a):",
        "Contoso <h@contoso.example> 于2024年12月3日周二 10:15写道：",
        "On 03/12/2024 10:15, Contoso wrote:",
        "Am 03.12.24 um 10:15 schrieb Contoso:",
    ];
    for attribution in cases {
        let reply = extract_reply(&format!("Thanks!\n\n{attribution}\n\n> old\n"));
        assert_eq!(reply.new_text, "Thanks!", "{attribution}");
        assert_eq!(
            reply.quote_start,
            Some(QuoteStart::Attribution),
            "{attribution}"
        );
    }
}

#[test]
fn an_attribution_wrapped_onto_two_lines() {
    let text = "Thanks!\n\nOn Tue, Dec 3, 2024 at 10:15 AM Contoso Helpdesk\n\
                <helpdesk@contoso.example> wrote:\n\n> old\n";
    let reply = extract_reply(text);
    assert_eq!(reply.new_text, "Thanks!");
    assert!(reply.quoted.unwrap().starts_with("On Tue"));
}

#[test]
fn quoting_without_attribution_and_answers_below_the_quote() {
    assert_eq!(new_text("Agreed.\n> old\n> older\n"), "Agreed.");
    let below =
        "On 03/12/2024 10:15, Contoso wrote:\n> Which code?\n>\n> Tom\n\nE-42.\n\n-- \nAnn\n";
    let reply = extract_reply(below);
    assert_eq!(reply.new_text, "E-42.");
    assert_eq!(reply.signature.as_deref(), Some("Ann"));
    assert_eq!(
        reply.quoted.as_deref(),
        Some("On 03/12/2024 10:15, Contoso wrote:\n> Which code?\n>\n> Tom")
    );
}

#[test]
fn forwards_keep_the_note() {
    for marker in [
        "---------- Forwarded message ---------",
        "-------- Forwarded Message --------",
        "-------- Weitergeleitete Nachricht --------",
        "Begin forwarded message:",
        "Début du message réexpédié :",
        "Inicio del mensaje reenviado:",
    ] {
        let reply = extract_reply(&format!(
            "FYI, see below.\n\n{marker}\nFrom: A\nDate: x\n\nold"
        ));
        assert_eq!(reply.new_text, "FYI, see below.", "{marker}");
        assert_eq!(reply.quote_start, Some(QuoteStart::Forward), "{marker}");
    }
    let bare = extract_reply("---------- Forwarded message ---------\nFrom: A\nDate: x\n\nold");
    assert_eq!(bare.new_text, "");
    assert!(bare.quoted.is_some());
}

#[test]
fn signatures_are_taken_off() {
    let cases = [
        ("Ok.\n\nSent from my iPhone", "Sent from my iPhone"),
        (
            "Ok.\n\nVon meinem iPhone gesendet",
            "Von meinem iPhone gesendet",
        ),
        ("Ok.\n\nEnvoyé de mon iPhone", "Envoyé de mon iPhone"),
        (
            "Ok.\n\nGet Outlook for iOS<https://aka.ms/o0ukef>",
            "Get Outlook for iOS<https://aka.ms/o0ukef>",
        ),
        (
            "Ok.\n\nOutlook für Android beziehen",
            "Outlook für Android beziehen",
        ),
        ("Ok.\n\niPhoneから送信", "iPhoneから送信"),
        (
            "Ok.\n\nVon meinem Samsung Galaxy Smartphone gesendet.",
            "Von meinem Samsung Galaxy Smartphone gesendet.",
        ),
        (
            "Ok.\n\nInviato dal mio dispositivo Galaxy",
            "Inviato dal mio dispositivo Galaxy",
        ),
        ("Ok.\n\n-- \nAnn Example\nFabrikam", "Ann Example\nFabrikam"),
    ];
    for (text, sig) in cases {
        let reply = extract_reply(text);
        assert_eq!(reply.new_text, "Ok.", "{text}");
        assert_eq!(reply.signature.as_deref(), Some(sig), "{text}");
        assert_eq!(reply.quoted, None);
    }
    // Mid-text, the words are the sender's.
    let text = "Von meinem iPhone gesendet kommt nichts an.\nAuch nicht vom Laptop.\nNoch eine Zeile.\nAnna";
    assert_eq!(new_text(text), text);
}

#[test]
fn text_that_only_looks_like_a_quote_mark_is_kept() {
    let text = "Hi,\n\nmy colleague wrote: it works.\nOn Monday it did, on Tuesday it did not.\n\
                Von: wem kam die Mail? An: wen ging sie?\nFrom my side, done.";
    let reply = extract_reply(text);
    assert_eq!(reply.new_text, text);
    assert_eq!(reply.quote_start, None);
}

#[test]
fn a_customers_own_headings_lists_and_quotes_of_others_are_kept() {
    let cases = [
        "Il viaggio:\nDa: Milano\nA: Roma\nData: 3 dicembre 2024\n\nGrazie",
        "Hi,\n\n--- Steps to reproduce ---\n1. open the scanner\n--- Expected ---\nmail",
        "My colleague Tom (ext. 4411) wrote:\n\nthe scanner is broken",
    ];
    for text in cases {
        let reply = extract_reply(text);
        assert_eq!(reply.new_text, text, "{text}");
        assert_eq!(reply.quote_start, None, "{text}");
    }
}

#[test]
fn html_markers_of_each_client() {
    let outlook = "<p class=MsoNormal>Works.<o:p></o:p></p><div style=\"border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm\"><p class=MsoNormal><b>From:</b> A</p></div><p>old</p>";
    let owa = "<div>Works.</div><div id=\"Signature\">Ann<br>Fabrikam</div><div id=\"appendonsend\"></div><hr><div id=\"divRplyFwdMsg\"><b>From:</b> A</div><div>old</div>";
    let gmail = "<div dir=\"ltr\">Works.<br></div><br><div class=\"gmail_quote\"><div class=\"gmail_attr\">On x, A wrote:<br></div><blockquote class=\"gmail_quote\">old</blockquote></div>";
    let apple = "<div dir=\"ltr\">Works.</div><div dir=\"ltr\"><br id=\"lineBreakAtBeginningOfSignature\"><div dir=\"ltr\">Sent from my iPhone</div><blockquote type=\"cite\">On x, A wrote:</blockquote></div>";
    let tb = "<p>Works.</p><pre class=\"moz-signature\" cols=\"72\">-- \nAnn</pre><div class=\"moz-cite-prefix\">On x, A wrote:<br></div><blockquote type=\"cite\">old</blockquote>";
    for html in [outlook, owa, gmail, apple, tb] {
        let reply = extract_reply_html(html);
        assert_eq!(reply.new_text, "Works.", "{html}");
        assert_eq!(reply.quote_start, Some(QuoteStart::HtmlMarker), "{html}");
        assert!(
            reply
                .quoted
                .is_some_and(|q| q.contains("old") || q.contains("wrote"))
        );
    }
    assert_eq!(
        extract_reply_html(owa).signature.as_deref(),
        Some("Ann\nFabrikam")
    );
}

#[test]
fn an_html_answer_below_the_quote() {
    let tb = "<div class=\"moz-cite-prefix\">On x, A wrote:<br></div><blockquote type=\"cite\">\
              old<blockquote type=\"cite\">older</blockquote></blockquote><p>Below.</p>\
              <pre class=\"moz-signature\">-- \nAnn</pre>";
    let reply = extract_reply_html(tb);
    assert_eq!(reply.new_text, "Below.");
    assert_eq!(reply.signature.as_deref(), Some("Ann"));
    assert_eq!(reply.quoted.as_deref(), Some("On x, A wrote:\nold\nolder"));
}

#[test]
fn html_to_text_keeps_blocks_and_paragraphs() {
    let html = "<html><head><style>p {x}</style><title>t</title></head><body>\
                <div>Hi &amp; hello,</div><div><br></div><div>line&nbsp;two</div>\
                <p>para one</p><p>para <b>two</b></p><pre>a\n  b</pre>\
                <!-- <div>comment</div> --><table><tr><td>c1</td><td>c2</td></tr></table></body></html>";
    assert_eq!(
        html_to_text(html),
        "Hi & hello,\n\nline two\npara one\n\npara two\n\na\n  b\nc1 c2"
    );
}

#[test]
fn no_quote_is_all_new_text_and_bad_input_does_not_panic() {
    assert_eq!(new_text("Just a question.\n"), "Just a question.");
    assert_eq!(extract_reply(""), Reply::default());
    for html in [
        "<",
        "<div",
        "<a href=\"x>",
        "&",
        "&#xFFFFFFFF;",
        "&#55296;",
        "<!--",
        "<style>",
        "é<é>&é;",
    ] {
        let _ = extract_reply_html(html);
        let _ = extract_reply(html);
    }
    // Hostile shapes finish (no deep recursion, nothing quadratic).
    let many = "On 1 Dec 2024, A wrote:\n> x\n".repeat(50_000);
    assert_eq!(extract_reply(&many).new_text, "");
    let _ = extract_reply(&"x".repeat(1 << 20));
    let _ = extract_reply(&"________________\n\n".repeat(20_000));
    let _ = extract_reply_html(&"<blockquote type=cite>".repeat(50_000));
    let _ = extract_reply_html(&"<".repeat(1 << 16));
    let _ = extract_reply_html(&format!("<a b=\"{}", ">".repeat(1 << 16)));
    // The private marks cannot be forged from outside.
    let forged = extract_reply("Real text\n\u{E000}q\nmore");
    assert_eq!(forged.new_text, "Real text\n q\nmore");
}
