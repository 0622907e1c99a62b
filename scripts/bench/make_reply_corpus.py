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

# Per language: the customer, three reply bodies (paragraphs of lines), the agent's quoted
# message, and what each client writes in that language.
L = {}

L["en"] = dict(
    name="Ann Example", addr="ann@fabrikam.example", company="Fabrikam Ltd. | Facilities",
    phone="+1 555 0100",
    bodies=[
        [["Hi Tom,"], ["Thanks for the quick answer. The printer on the 3rd floor works again, but the scanner still shows error E-42 when I scan to email."], ["Best regards,", "Ann"]],
        [["Hello,"], ["I tried the steps you sent:", "- restarted the laptop", "- signed out and in again", "- cleared the Teams cache"], ["None of them helped. Could someone call me today at +1 555 0100?"], ["Thanks,", "Ann"]],
        [["Yes, Thursday at 14:00 works for me. From my side nothing else is needed."]],
    ],
    quoted=["Hello Ann,", "", "thanks for your message. Could you tell us which error code the scanner shows?", "", "Kind regards", "Tom", "Contoso IT Support"],
    subject="[HELP-1042] Scanner error",
    ol=dict(frm="From:", sent="Sent:", to="To:", cc="Cc:", subj="Subject:", date="Tuesday, December 3, 2024 10:15 AM",
            orig="-----Original Message-----", re="RE:", fw="FW:"),
    get_outlook=("Get Outlook for iOS", "Get Outlook for Android"),
    get_outlook_html=('Get <a href="https://aka.ms/o0ukef">Outlook for iOS</a>', 'Get <a href="https://aka.ms/AAb9ysg">Outlook for Android</a>'),
    gmail="On Tue, Dec 3, 2024 at 10:15\u202fAM Contoso Helpdesk <helpdesk@contoso.example> wrote:",
    gmail_fwd=("---------- Forwarded message ---------", "From:"),
    apple="On 3 Dec 2024, at 10:15, Contoso Helpdesk <helpdesk@contoso.example> wrote:",
    apple_ios="On Dec 3, 2024, at 10:15, Contoso Helpdesk <helpdesk@contoso.example> wrote:",
    apple_fwd=("Begin forwarded message:", "From:", "Subject:", "Date:", "To:"),
    iphone="Sent from my iPhone",
    tb="On 03/12/2024 10:15, Contoso Helpdesk wrote:",
    tb_fwd=("-------- Forwarded Message --------", "Subject:", "Date:", "From:", "To:"),
    note=[["FYI, this is the mail from the supplier I mentioned on the phone."]],
)

L["de"] = dict(
    name="Anna Beispiel", addr="anna@fabrikam.example", company="Fabrikam GmbH | Haustechnik",
    phone="+49 30 1234567",
    bodies=[
        [["Hallo Tom,"], ["danke für die schnelle Antwort. Der Drucker im 3. Stock geht wieder, aber der Scanner zeigt beim Scan an E-Mail immer noch Fehler E-42."], ["Viele Grüße", "Anna"]],
        [["Guten Tag,"], ["ich habe die Schritte ausprobiert:", "- Laptop neu gestartet", "- ab- und wieder angemeldet", "- den Teams-Cache geleert"], ["Nichts davon hat geholfen. Kann mich heute jemand unter +49 30 1234567 anrufen?"], ["Danke,", "Anna"]],
        [["Ja, Donnerstag um 14:00 passt mir. Von meiner Seite ist sonst nichts nötig."]],
    ],
    quoted=["Hallo Anna,", "", "danke für Ihre Nachricht. Welchen Fehlercode zeigt der Scanner an?", "", "Freundliche Grüße", "Tom", "Contoso IT-Support"],
    subject="[HELP-1042] Scannerfehler",
    ol=dict(frm="Von:", sent="Gesendet:", to="An:", cc="Cc:", subj="Betreff:", date="Dienstag, 3. Dezember 2024 10:15",
            orig="-----Ursprüngliche Nachricht-----", re="AW:", fw="WG:"),
    get_outlook=("Outlook für iOS beziehen", "Outlook für Android beziehen"),
    get_outlook_html=('<a href="https://aka.ms/o0ukef">Outlook für iOS</a> beziehen', '<a href="https://aka.ms/AAb9ysg">Outlook für Android</a> beziehen'),
    gmail="Am Di., 3. Dez. 2024 um 10:15 Uhr schrieb Contoso Helpdesk <helpdesk@contoso.example>:",
    gmail_fwd=("---------- Weitergeleitete Nachricht ---------", "Von:"),
    apple="Am 03.12.2024 um 10:15 schrieb Contoso Helpdesk <helpdesk@contoso.example>:",
    apple_ios="Am 03.12.2024 um 10:15 schrieb Contoso Helpdesk <helpdesk@contoso.example>:",
    apple_fwd=("Anfang der weitergeleiteten Nachricht:", "Von:", "Betreff:", "Datum:", "An:"),
    iphone="Von meinem iPhone gesendet",
    tb="Am 03.12.24 um 10:15 schrieb Contoso Helpdesk:",
    tb_fwd=("-------- Weitergeleitete Nachricht --------", "Betreff:", "Datum:", "Von:", "An:"),
    note=[["Zur Info: das ist die Mail vom Lieferanten, von der ich am Telefon erzählt habe."]],
)

L["fr"] = dict(
    name="Anne Exemple", addr="anne@fabrikam.example", company="Fabrikam SARL | Services généraux",
    phone="+33 1 23 45 67 89",
    bodies=[
        [["Bonjour Tom,"], ["Merci pour la réponse rapide. L'imprimante du 3e étage fonctionne à nouveau, mais le scanner affiche toujours l'erreur E-42 lors de l'envoi par e-mail."], ["Cordialement,", "Anne"]],
        [["Bonjour,"], ["J'ai essayé les étapes indiquées :", "- redémarrer l'ordinateur", "- me déconnecter puis me reconnecter", "- vider le cache de Teams"], ["Rien n'a fonctionné. Quelqu'un peut-il m'appeler aujourd'hui au +33 1 23 45 67 89 ?"], ["Merci,", "Anne"]],
        [["Oui, jeudi à 14h00 me convient. De mon côté, rien d'autre n'est nécessaire."]],
    ],
    quoted=["Bonjour Anne,", "", "merci pour votre message. Quel code d'erreur le scanner affiche-t-il ?", "", "Cordialement", "Tom", "Support informatique Contoso"],
    subject="[HELP-1042] Erreur du scanner",
    ol=dict(frm="De\u00a0:", sent="Envoyé\u00a0:", to="À\u00a0:", cc="Cc\u00a0:", subj="Objet\u00a0:", date="mardi 3 décembre 2024 10:15",
            orig="-----Message d'origine-----", re="RE\u00a0:", fw="TR\u00a0:"),
    get_outlook=("Télécharger Outlook pour iOS", "Télécharger Outlook pour Android"),
    get_outlook_html=('Télécharger <a href="https://aka.ms/o0ukef">Outlook pour iOS</a>', 'Télécharger <a href="https://aka.ms/AAb9ysg">Outlook pour Android</a>'),
    gmail="Le mar. 3 déc. 2024 à 10:15, Contoso Helpdesk <helpdesk@contoso.example> a écrit :",
    gmail_fwd=("---------- Forwarded message ---------", "De :"),
    apple="Le 3 déc. 2024 à 10:15, Contoso Helpdesk <helpdesk@contoso.example> a écrit :",
    apple_ios="Le 3 déc. 2024 à 10:15, Contoso Helpdesk <helpdesk@contoso.example> a écrit :",
    apple_fwd=("Début du message réexpédié :", "De:", "Objet:", "Date:", "À:"),
    iphone="Envoyé de mon iPhone",
    tb="Le 03/12/2024 à 10:15, Contoso Helpdesk a écrit\u00a0:",
    tb_fwd=("-------- Message transféré --------", "Sujet\u00a0:", "Date\u00a0:", "De\u00a0:", "Pour\u00a0:"),
    note=[["Pour info, voici le mail du fournisseur dont je vous ai parlé au téléphone."]],
)

L["es"] = dict(
    name="Ana Ejemplo", addr="ana@fabrikam.example", company="Fabrikam S.L. | Servicios generales",
    phone="+34 912 345 678",
    bodies=[
        [["Hola Tom:"], ["Gracias por la respuesta rápida. La impresora de la 3.ª planta ya funciona, pero el escáner sigue mostrando el error E-42 al escanear a correo."], ["Saludos,", "Ana"]],
        [["Buenos días:"], ["He probado los pasos que me enviaste:", "- reiniciar el portátil", "- cerrar sesión y volver a entrar", "- borrar la caché de Teams"], ["Nada ha funcionado. ¿Alguien me puede llamar hoy al +34 912 345 678?"], ["Gracias,", "Ana"]],
        [["Sí, el jueves a las 14:00 me va bien. De mi parte no hace falta nada más."]],
    ],
    quoted=["Hola Ana:", "", "gracias por tu mensaje. ¿Qué código de error muestra el escáner?", "", "Saludos", "Tom", "Soporte TI de Contoso"],
    subject="[HELP-1042] Error del escáner",
    ol=dict(frm="De:", sent="Enviado el:", to="Para:", cc="CC:", subj="Asunto:", date="martes, 3 de diciembre de 2024 10:15",
            orig="-----Mensaje original-----", re="RE:", fw="RV:"),
    get_outlook=("Obtener Outlook para iOS", "Obtener Outlook para Android"),
    get_outlook_html=('Obtener <a href="https://aka.ms/o0ukef">Outlook para iOS</a>', 'Obtener <a href="https://aka.ms/AAb9ysg">Outlook para Android</a>'),
    gmail="El mar, 3 dic 2024 a las 10:15, Contoso Helpdesk (<helpdesk@contoso.example>) escribió:",
    gmail_fwd=("---------- Forwarded message ---------", "De:"),
    apple="El 3 dic 2024, a las 10:15, Contoso Helpdesk <helpdesk@contoso.example> escribió:",
    apple_ios="El 3 dic 2024, a las 10:15, Contoso Helpdesk <helpdesk@contoso.example> escribió:",
    apple_fwd=("Inicio del mensaje reenviado:", "De:", "Asunto:", "Fecha:", "Para:"),
    iphone="Enviado desde mi iPhone",
    tb="El 3/12/24 a las 10:15, Contoso Helpdesk escribió:",
    tb_fwd=("-------- Mensaje reenviado --------", "Asunto:", "Fecha:", "De:", "Para:"),
    note=[["Te reenvío el correo del proveedor del que te hablé por teléfono."]],
)

L["it"] = dict(
    name="Anna Esempio", addr="anna.esempio@fabrikam.example", company="Fabrikam S.r.l. | Servizi generali",
    phone="+39 02 1234 5678",
    bodies=[
        [["Ciao Tom,"], ["grazie per la risposta veloce. La stampante al 3° piano funziona di nuovo, ma lo scanner mostra ancora l'errore E-42 quando scansiono verso e-mail."], ["Cordiali saluti,", "Anna"]],
        [["Buongiorno,"], ["ho provato i passaggi indicati:", "- riavviato il portatile", "- disconnesso e riconnesso l'account", "- svuotato la cache di Teams"], ["Niente ha funzionato. Qualcuno può chiamarmi oggi al +39 02 1234 5678?"], ["Grazie,", "Anna"]],
        [["Sì, giovedì alle 14:00 va bene. Da parte mia non serve altro."]],
    ],
    quoted=["Ciao Anna,", "", "grazie per il messaggio. Quale codice di errore mostra lo scanner?", "", "Saluti", "Tom", "Supporto IT Contoso"],
    subject="[HELP-1042] Errore dello scanner",
    ol=dict(frm="Da:", sent="Inviato:", to="A:", cc="Cc:", subj="Oggetto:", date="martedì 3 dicembre 2024 10:15",
            orig="-----Messaggio originale-----", re="R:", fw="I:"),
    get_outlook=("Scarica Outlook per iOS", "Scarica Outlook per Android"),
    get_outlook_html=('Scarica <a href="https://aka.ms/o0ukef">Outlook per iOS</a>', 'Scarica <a href="https://aka.ms/AAb9ysg">Outlook per Android</a>'),
    gmail="Il giorno mar 3 dic 2024 alle ore 10:15 Contoso Helpdesk <helpdesk@contoso.example> ha scritto:",
    gmail_fwd=("---------- Forwarded message ---------", "Da:"),
    apple="Il giorno 3 dic 2024, alle ore 10:15, Contoso Helpdesk <helpdesk@contoso.example> ha scritto:",
    apple_ios="Il giorno 3 dic 2024, alle ore 10:15, Contoso Helpdesk <helpdesk@contoso.example> ha scritto:",
    apple_fwd=("Inizio messaggio inoltrato:", "Da:", "Oggetto:", "Data:", "A:"),
    iphone="Inviato da iPhone",
    tb="Il 03/12/24 10:15, Contoso Helpdesk ha scritto:",
    tb_fwd=("-------- Messaggio Inoltrato --------", "Oggetto:", "Data:", "Mittente:", "A:"),
    note=[["Ti inoltro la mail del fornitore di cui ti ho parlato al telefono."]],
)

L["nl"] = dict(
    name="Anke Voorbeeld", addr="anke@fabrikam.example", company="Fabrikam B.V. | Facilitair",
    phone="+31 20 123 4567",
    bodies=[
        [["Hoi Tom,"], ["Bedankt voor het snelle antwoord. De printer op de 3e verdieping werkt weer, maar de scanner geeft nog steeds fout E-42 bij scannen naar e-mail."], ["Met vriendelijke groet,", "Anke"]],
        [["Goedemiddag,"], ["Ik heb de stappen geprobeerd:", "- laptop opnieuw opgestart", "- af- en weer aangemeld", "- Teams-cache gewist"], ["Niets hielp. Kan iemand me vandaag bellen op +31 20 123 4567?"], ["Bedankt,", "Anke"]],
        [["Ja, donderdag om 14:00 past mij. Van mijn kant is verder niets nodig."]],
    ],
    quoted=["Hallo Anke,", "", "bedankt voor je bericht. Welke foutcode toont de scanner?", "", "Groet", "Tom", "Contoso IT-support"],
    subject="[HELP-1042] Scannerfout",
    ol=dict(frm="Van:", sent="Verzonden:", to="Aan:", cc="CC:", subj="Onderwerp:", date="dinsdag 3 december 2024 10:15",
            orig="-----Oorspronkelijk bericht-----", re="RE:", fw="FW:"),
    get_outlook=("Outlook voor iOS downloaden", "Outlook voor Android downloaden"),
    get_outlook_html=('<a href="https://aka.ms/o0ukef">Outlook voor iOS</a> downloaden', '<a href="https://aka.ms/AAb9ysg">Outlook voor Android</a> downloaden'),
    gmail="Op di 3 dec 2024 om 10:15 schreef Contoso Helpdesk <helpdesk@contoso.example>:",
    gmail_fwd=("---------- Doorgestuurd bericht ---------", "Van:"),
    apple="Op 3 dec. 2024 om 10:15 heeft Contoso Helpdesk <helpdesk@contoso.example> het volgende geschreven:",
    apple_ios="Op 3 dec. 2024 om 10:15 heeft Contoso Helpdesk <helpdesk@contoso.example> het volgende geschreven:",
    apple_fwd=("Begin doorgestuurd bericht:", "Van:", "Onderwerp:", "Datum:", "Aan:"),
    iphone="Verstuurd vanaf mijn iPhone",
    tb="Op 03-12-2024 om 10:15 schreef Contoso Helpdesk:",
    tb_fwd=("-------- Doorgestuurd bericht --------", "Onderwerp:", "Datum:", "Van:", "Aan:"),
    note=[["Ter info: dit is de mail van de leverancier waar ik het aan de telefoon over had."]],
)

L["pt"] = dict(
    name="Ana Exemplo", addr="ana.exemplo@fabrikam.example", company="Fabrikam Ltda. | Facilities",
    phone="+55 11 91234-5678",
    bodies=[
        [["Olá Tom,"], ["Obrigada pela resposta rápida. A impressora do 3º andar voltou a funcionar, mas o scanner ainda mostra o erro E-42 ao digitalizar para e-mail."], ["Atenciosamente,", "Ana"]],
        [["Bom dia,"], ["Tentei os passos que você enviou:", "- reiniciei o notebook", "- saí e entrei de novo na conta", "- limpei o cache do Teams"], ["Nada funcionou. Alguém pode me ligar hoje no +55 11 91234-5678?"], ["Obrigada,", "Ana"]],
        [["Sim, quinta-feira às 14:00 está ótimo. Da minha parte não é preciso mais nada."]],
    ],
    quoted=["Olá Ana,", "", "obrigado pela mensagem. Qual código de erro o scanner mostra?", "", "Abraço", "Tom", "Suporte de TI Contoso"],
    subject="[HELP-1042] Erro no scanner",
    ol=dict(frm="De:", sent="Enviado:", to="Para:", cc="Cc:", subj="Assunto:", date="terça-feira, 3 de dezembro de 2024 10:15",
            orig="-----Mensagem original-----", re="RE:", fw="ENC:"),
    get_outlook=("Obter o Outlook para iOS", "Obter o Outlook para Android"),
    get_outlook_html=('Obter o <a href="https://aka.ms/o0ukef">Outlook para iOS</a>', 'Obter o <a href="https://aka.ms/AAb9ysg">Outlook para Android</a>'),
    gmail="Em ter., 3 de dez. de 2024 às 10:15, Contoso Helpdesk <helpdesk@contoso.example> escreveu:",
    gmail_fwd=("---------- Forwarded message ---------", "De:"),
    apple="Em 3 de dez. de 2024, à(s) 10:15, Contoso Helpdesk <helpdesk@contoso.example> escreveu:",
    apple_ios="Em 3 de dez. de 2024, à(s) 10:15, Contoso Helpdesk <helpdesk@contoso.example> escreveu:",
    apple_fwd=("Início da mensagem encaminhada:", "De:", "Assunto:", "Data:", "Para:"),
    iphone="Enviado do meu iPhone",
    tb="Em 03/12/2024 10:15, Contoso Helpdesk escreveu:",
    tb_fwd=("-------- Mensagem encaminhada --------", "Assunto:", "Data:", "De:", "Para:"),
    note=[["Segue o e-mail do fornecedor que mencionei por telefone."]],
)

L["ja"] = dict(
    name="山田 花子", addr="yamada@fabrikam.example", company="Fabrikam株式会社 総務部",
    phone="03-1234-5678",
    bodies=[
        [["Tom様"], ["早速のご回答ありがとうございます。3階のプリンターは復旧しましたが、スキャナーでメール送信するとまだエラーE-42が表示されます。"], ["よろしくお願いいたします。", "山田"]],
        [["お疲れ様です。"], ["ご案内いただいた手順を試しました:", "- ノートPCの再起動", "- サインアウトと再サインイン", "- Teamsのキャッシュ削除"], ["どれも効果がありませんでした。本日 03-1234-5678 までお電話いただけますか。"], ["山田"]],
        [["はい、木曜日の14:00で問題ありません。"]],
    ],
    quoted=["山田様", "", "お問い合わせありがとうございます。スキャナーに表示されるエラーコードを教えていただけますか。", "", "Contoso ITサポート", "Tom"],
    subject="[HELP-1042] スキャナーのエラー",
    ol=dict(frm="差出人:", sent="送信日時:", to="宛先:", cc="CC:", subj="件名:", date="2024年12月3日 10:15",
            orig="-----Original Message-----", re="RE:", fw="FW:"),
    get_outlook=("iOS 版 Outlook を入手", "Android 版 Outlook を入手"),
    get_outlook_html=('<a href="https://aka.ms/o0ukef">iOS 版 Outlook</a> を入手', '<a href="https://aka.ms/AAb9ysg">Android 版 Outlook</a> を入手'),
    gmail="2024年12月3日(火) 10:15 Contoso Helpdesk <helpdesk@contoso.example>:",
    gmail_fwd=("---------- Forwarded message ---------", "From:"),
    apple="2024/12/03 10:15、Contoso Helpdesk <helpdesk@contoso.example>のメール:",
    apple_ios="2024/12/03 10:15、Contoso Helpdesk <helpdesk@contoso.example>のメール:",
    apple_fwd=("転送されたメッセージ:", "差出人:", "件名:", "日付:", "宛先:"),
    iphone="iPhoneから送信",
    tb="On 2024/12/03 10:15, Contoso Helpdesk wrote:",
    tb_fwd=("-------- 転送メッセージ --------", "件名:", "日付:", "差出人:", "宛先:"),
    note=[["ご参考までに、電話でお話しした仕入先からのメールを転送します。"]],
)

# Three more languages Outlook ships with, for Outlook's header block and the mobile clients.
L["sv"] = dict(
    name="Anna Exempel", addr="anna.exempel@fabrikam.example", company="Fabrikam AB | Fastighet",
    phone="+46 8 123 456 78",
    bodies=[
        [["Hej Tom,"], ["Tack för det snabba svaret. Skrivaren på plan 3 fungerar igen, men skannern visar fortfarande fel E-42 vid skanning till e-post."], ["Vänliga hälsningar,", "Anna"]],
        [["Ja, torsdag kl. 14:00 passar mig."]],
    ],
    quoted=["Hej Anna,", "", "tack för ditt meddelande. Vilken felkod visar skannern?", "", "Hälsningar", "Tom"],
    subject="[HELP-1042] Skannerfel",
    ol=dict(frm="Från:", sent="Skickat:", to="Till:", cc="Kopia:", subj="Ämne:", date="den 3 december 2024 10:15",
            orig="-----Ursprungligt meddelande-----", re="SV:", fw="VB:"),
    get_outlook=("Skaffa Outlook för iOS", "Skaffa Outlook för Android"),
    gmail="Den tis 3 dec. 2024 kl 10:15 skrev Contoso Helpdesk <helpdesk@contoso.example>:",
    iphone="Skickat från min iPhone",
    apple="3 dec. 2024 kl. 10:15 skrev Contoso Helpdesk <helpdesk@contoso.example>:",
)

L["pl"] = dict(
    name="Anna Przykład", addr="anna.przyklad@fabrikam.example", company="Fabrikam Sp. z o.o.",
    phone="+48 22 123 45 67",
    bodies=[
        [["Dzień dobry,"], ["dziękuję za szybką odpowiedź. Drukarka na 3. piętrze znowu działa, ale skaner nadal pokazuje błąd E-42 przy skanowaniu do e-maila."], ["Pozdrawiam,", "Anna"]],
        [["Tak, czwartek o 14:00 mi pasuje."]],
    ],
    quoted=["Dzień dobry,", "", "dziękujemy za wiadomość. Jaki kod błędu pokazuje skaner?", "", "Pozdrawiamy", "Tom"],
    subject="[HELP-1042] Błąd skanera",
    ol=dict(frm="Od:", sent="Wysłano:", to="Do:", cc="DW:", subj="Temat:", date="wtorek, 3 grudnia 2024 10:15",
            orig="-----Oryginalna wiadomość-----", re="RE:", fw="PD:"),
    get_outlook=("Pobierz aplikację Outlook dla systemu iOS", "Pobierz aplikację Outlook dla systemu Android"),
    gmail="wt., 3 gru 2024 o 10:15 Contoso Helpdesk <helpdesk@contoso.example> napisał(a):",
    iphone="Wysłane z iPhone'a",
    apple="Wiadomość napisana przez Contoso Helpdesk <helpdesk@contoso.example> w dniu 3 gru 2024, o godz. 10:15:",
)

L["zh"] = dict(
    name="王芳", addr="wang.fang@fabrikam.example", company="Fabrikam 有限公司 行政部",
    phone="+86 10 1234 5678",
    bodies=[
        [["Tom，你好："], ["谢谢你的快速回复。三楼的打印机已经恢复正常，但扫描到邮件时扫描仪仍然显示错误 E-42。"], ["谢谢", "王芳"]],
        [["好的，周四14:00可以。"]],
    ],
    quoted=["王芳，你好：", "", "感谢来信。请问扫描仪显示的错误代码是什么？", "", "Contoso IT 支持", "Tom"],
    subject="[HELP-1042] 扫描仪错误",
    ol=dict(frm="发件人:", sent="发送时间:", to="收件人:", cc="抄送:", subj="主题:", date="2024年12月3日 10:15",
            orig="-----原始邮件-----", re="回复:", fw="转发:"),
    get_outlook=("获取 iOS 版 Outlook", "获取 Android 版 Outlook"),
    gmail="Contoso Helpdesk <helpdesk@contoso.example> 于2024年12月3日周二 10:15写道：",
    iphone="发自我的iPhone",
    apple="2024年12月3日 10:15，Contoso Helpdesk <helpdesk@contoso.example> 写道：",
)


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
    out = []
    for i, p in enumerate(body):
        if i:
            out.append('<p class="MsoNormal"><o:p>&nbsp;</o:p></p>')
        for line in p:
            out.append(f'<p class="MsoNormal">{esc(line)}<o:p></o:p></p>')
    return "\n".join(out)


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
    out = []
    for i, p in enumerate(body):
        if i:
            out.append(f'<div class="elementToProof" style="{OWA_STYLE}"><br></div>')
        for line in p:
            out.append(f'<div class="elementToProof" style="{OWA_STYLE}">{esc(line)}</div>')
    return "\n".join(out)


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
    divs = []
    for i, p in enumerate(body):
        if i:
            divs.append('<div dir="auto"><br></div>')
        for line in p:
            divs.append(f'<div dir="auto">{esc(line)}</div>')
    get = d["get_outlook_html"][1 if android else 0]
    return ('<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n</head>\n<body>\n'
            + "\n".join(divs) + '\n<div dir="auto"><br></div>\n'
            '<div id="ms-outlook-mobile-signature" dir="auto"><div dir="auto">' + get + '</div></div>\n'
            '<div id="mail-editor-reference-message-container" dir="auto">' + owa_quote_block(lang, subject_prefix)
            + '</div>\n</body>\n</html>\n')


def gmail_divs(body):
    out = []
    for i, p in enumerate(body):
        if i:
            out.append("<div><br></div>")
        for line in p:
            out.append(f"<div>{esc(line)}</div>")
    return "".join(out)


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
    divs = []
    for i, p in enumerate(body):
        if i:
            divs.append('<div dir="ltr"><br></div>')
        for line in p:
            divs.append(f'<div dir="ltr">{esc(line)}</div>')
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
    get = d["get_outlook"][0]
    text = (plain(body) + "\n\n" + get + "<https://aka.ms/o0ukef>\n" + "\n".join(outlook_block(lang, o["re"], sep="_" * 32))
            + "\n\n" + "\n".join(d["quoted"]) + "\n")
    add("outlook-mobile", "ios", lang, "text", text, expected_of(body), get)

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
    get = d["get_outlook"][1]
    text = (plain(body) + "\n\n" + get + "<https://aka.ms/AAb9ysg>\n" + "\n".join(outlook_block(lang, o["re"], sep="_" * 32))
            + "\n\n" + "\n".join(d["quoted"]) + "\n")
    add("outlook-mobile", "android", lang, "text", text, expected_of(body), get)

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
