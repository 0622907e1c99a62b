//! EWS SOAP responses: the envelope reader, every operation's response parser, and the
//! Autodiscover (POX XML and JSON) answers — everything ews-mail reads from a server.
#![no_main]

use ews_mail::ops::{
    CreateFolder, CreateItem, DeleteItem, FindFolder, FindItem, GetFolder, GetItem, MoveItem,
    SendItem, SyncFolderItems, UpdateItem,
};
use ews_mail::soap::{Operation, message_xml, parse_envelope, response_messages, response_status};
use ews_mail::types::parse_datetime;
use libfuzzer_sys::fuzz_target;

/// What the client allows per response (the cap itself is exercised by small inputs too).
const LIMIT: usize = 1 << 20;

fn all_ops(body: &ews_mail::xml::Element) {
    let _ = FindItem::parse(body);
    let _ = GetItem::parse(body);
    let _ = GetFolder::parse(body);
    let _ = UpdateItem::parse(body);
    let _ = MoveItem::parse(body);
    let _ = DeleteItem::parse(body);
    let _ = CreateItem::parse(body);
    let _ = SendItem::parse(body);
    let _ = SyncFolderItems::parse(body);
    let _ = FindFolder::parse(body);
    let _ = CreateFolder::parse(body);
    if let Ok(msgs) = response_messages(body) {
        for m in msgs.into_iter().flatten() {
            let _ = response_status(m);
            let _ = message_xml(m);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // A tiny limit too, so the size cap's error path is fuzzed alongside the parser.
    let _ = parse_envelope(data, 64);
    if let Ok(env) = parse_envelope(data, LIMIT) {
        all_ops(&env.body);
        for child in &env.body.children {
            all_ops(child);
        }
    }
    let _ = ews_mail::autodiscover::parse_pox(data);
    let _ = ews_mail::autodiscover::parse_json(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = parse_datetime(s);
        let _ = ews_mail::ResponseClass::parse(s);
    }
});
