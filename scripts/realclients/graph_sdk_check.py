#!/usr/bin/env python3
"""Real-client check: Microsoft's Graph SDK for Python (msgraph-sdk, with azure-identity),
unchanged, against the sandbox's Graph endpoint.

Usage: graph_sdk_check.py BASE_URL     (e.g. https://localhost:8443; SSL_CERT_FILE and
                                       REQUESTS_CA_BUNDLE name the CA the sandbox wrote)

The SDK is configured as for any national cloud (its documented knobs only): azure-identity's
ClientSecretCredential with the sandbox as `authority`, the SDK's GraphRequestAdapter with the
sandbox's `/v1.0` as base URL, its authentication provider allowed to send tokens to the
sandbox's host, and an httpx client that trusts the sandbox's CA. App-only, on
/users/megan.bowen@contoso.example, after 25 messages are delivered to her Inbox:

1. list the Inbox 10 per page (`$top`, `$select`, `$orderby`), following `@odata.nextLink`:
   3 pages, every subject once, in order;
2. `GET messages/{id}/$value`: the MIME as delivered;
3. mark one read (`PATCH` `isRead`): the Inbox's unread count drops by one;
4. create a folder and move a message there: it is in the folder (with the id `move` returned),
   no longer in the Inbox;
5. delete one: a GET then answers 404 `ErrorItemNotFound`;
6. one `$batch` (msgraph-core's BatchRequestContent) of three `$value` GETs and three `isRead`
   PATCHes: six 200s, the right MIME per item, three fewer unread; and one item with the
   absolute URL msgraph-core leaves in it, answered 400 as Graph answers it;
7. `sendMail` to a colleague and to an external address, saved to Sent Items: it arrives in
   the colleague's Inbox, leaves the tenant (the sandbox's outbox) and is in Sent Items;
8. delta of the Inbox 10 per page to its deltaLink: every message once; then after two
   deliveries, one change and one delete, the deltaLink returns exactly those four, the deleted
   one as `@removed`.
Exits non-zero with a message on the first failure.
"""

import asyncio
import ssl
import sys
from urllib.parse import urlparse

import httpx
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.headers_collection import HeadersCollection
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph._version import VERSION
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.mail_folder import MailFolder
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.users.item.mail_folders.item.messages.delta.delta_request_builder import (
    DeltaRequestBuilder,
)
from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)
from msgraph.generated.users.item.messages.item.move.move_post_request_body import (
    MovePostRequestBody,
)
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import (
    SendMailPostRequestBody,
)
from msgraph_core import GraphClientFactory
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem

from sandbox_admin import (APP, GRAPH_DEFAULT, SECRET, TENANT, Sandbox, ca_file, ok, require,
                           run_check)

USER = "megan.bowen@contoso.example"
COLLEAGUE = "alex.wilber@contoso.example"
EXTERNAL = "partner@fabrikam.example"
SEEDED = 25


def subject(i):
    return f"graph-sdk {i:02}"


def message_id(i):
    return f"graph-sdk-{i:02}@check.example"


class Check:
    def __init__(self, sb, client, adapter):
        self.sb = sb
        self.client = client
        self.adapter = adapter
        self.user = client.users.by_user_id(USER)
        self.inbox = self.user.mail_folders.by_mail_folder_id("inbox")
        self.ids = {}  # subject -> id

    async def counts(self):
        f = await self.inbox.get()
        return f.total_item_count, f.unread_item_count

    async def list_inbox(self):
        query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            top=10, select=["subject", "isRead"], orderby=["receivedDateTime"])
        page = await self.inbox.messages.get(
            request_configuration=RequestConfiguration(query_parameters=query))
        pages = [page]
        while page.odata_next_link:
            require(urlparse(page.odata_next_link).hostname == "localhost",
                    f"nextLink to another host: {page.odata_next_link}")
            page = await self.inbox.messages.with_url(page.odata_next_link).get()
            pages.append(page)
            require(len(pages) <= 10, "more than 10 pages of 10 for 25 messages")
        sizes = [len(p.value) for p in pages]
        require(sizes == [10, 10, 5], f"page sizes {sizes}, want [10, 10, 5]")
        subjects = [m.subject for p in pages for m in p.value]
        require(subjects == [subject(i) for i in range(SEEDED)], f"listing: {subjects}")
        self.ids = {m.subject: m.id for p in pages for m in p.value}
        ok("list with paging", f"{len(subjects)} messages in pages of {sizes}, in order")

    async def mime(self):
        raw = await self.user.messages.by_message_id(self.ids[subject(0)]).content.get()
        require(isinstance(raw, bytes), f"$value gave {type(raw).__name__}")
        require(f"Message-ID: <{message_id(0)}>".encode() in raw and b"body 00" in raw,
                f"$value: {raw[:300]!r}")
        ok("$value (MIME)", f"{len(raw)} bytes, the delivered Message-ID and body")

    async def mark_read(self):
        total, unread = await self.counts()
        require((total, unread) == (SEEDED, SEEDED), f"Inbox counts {total}/{unread} before")
        done = await self.user.messages.by_message_id(self.ids[subject(0)]).patch(
            Message(is_read=True))
        require(done.is_read is True, f"PATCH answered isRead {done.is_read}")
        again = await self.user.messages.by_message_id(self.ids[subject(0)]).get()
        require(again.is_read is True, "the message is not read after the PATCH")
        total, unread = await self.counts()
        require((total, unread) == (SEEDED, SEEDED - 1), f"after mark read: {total}/{unread}")
        ok("mark read", f"Inbox {total} total, {unread} unread")

    async def move(self):
        folder = await self.user.mail_folders.post(MailFolder(display_name="Processed by msgraph-sdk"))
        require(folder.id and folder.display_name == "Processed by msgraph-sdk", f"folder: {folder}")
        moved = await self.user.messages.by_message_id(self.ids[subject(1)]).move.post(
            MovePostRequestBody(destination_id=folder.id))
        require(moved.subject == subject(1) and moved.parent_folder_id == folder.id,
                f"move answered subject {moved.subject}, parent {moved.parent_folder_id}")
        there = await self.user.mail_folders.by_mail_folder_id(folder.id).messages.get()
        require([(m.id, m.subject) for m in there.value] == [(moved.id, subject(1))],
                f"the folder holds {[(m.id, m.subject) for m in there.value]}")
        total, unread = await self.counts()
        require((total, unread) == (SEEDED - 1, SEEDED - 2), f"Inbox after move: {total}/{unread}")
        ok("move", f"in '{folder.display_name}' under its new id; Inbox {total} total")

    async def delete(self):
        mid = self.ids[subject(2)]
        await self.user.messages.by_message_id(mid).delete()
        try:
            await self.user.messages.by_message_id(mid).get()
            require(False, "the deleted message is still there")
        except ODataError as e:
            require(e.response_status_code == 404 and e.error.code == "ErrorItemNotFound",
                    f"GET after delete: {e.response_status_code} {e.error.code if e.error else e}")
        total, unread = await self.counts()
        require((total, unread) == (SEEDED - 2, SEEDED - 3), f"Inbox after delete: {total}/{unread}")
        ok("delete", f"404 ErrorItemNotFound afterwards; Inbox {total} total")

    def batch_item(self, item_id, info):
        """A batch item from a request builder's RequestInformation, its URL made relative.

        msgraph-core 1.5.2 keeps the absolute URL when the builder knows its base URL (it does
        once a request went through it), and Graph answers such an item 400 "Resource not found
        for the segment" (msgraph-sdk-python#1015, msgraph-sdk-python-core#1116); users make the
        URL relative as #1015 shows, and so does this check (the item's own `url` attribute).
        """
        item = BatchRequestItem(info, id=item_id)
        item.url = item.url.removeprefix(self.adapter.base_url)
        return item

    async def batch(self):
        log_before = self.sb.request_log()
        content = BatchRequestContent()
        fetch = [3, 4, 5]
        read = [6, 7, 8]
        for i in fetch:
            info = self.user.messages.by_message_id(self.ids[subject(i)]).content \
                .to_get_request_information()
            content.add_request(f"get{i}", self.batch_item(f"get{i}", info))
        for i in read:
            info = self.user.messages.by_message_id(self.ids[subject(i)]) \
                .to_patch_request_information(Message(is_read=True))
            content.add_request(f"read{i}", self.batch_item(f"read{i}", info))
        # The SDK's own absolute URL, left as it is: answered as Graph answers it.
        info = self.user.messages.by_message_id(self.ids[subject(9)]).to_get_request_information()
        absolute = BatchRequestItem(info, id="absolute")
        require(absolute.url.startswith(self.adapter.base_url), f"item URL {absolute.url}")
        content.add_request("absolute", absolute)
        answer = await self.client.batch.post(content)

        def body(item):
            raw = item.body if item is not None else b""
            return raw.getvalue() if hasattr(raw, "getvalue") else bytes(raw or b"")

        def failed(item):
            return f"{item and item.status} {body(item)[:300]!r}"

        for i in fetch:
            item = answer.get_response_by_id(f"get{i}")
            require(item is not None and item.status == 200, f"batch get{i}: {failed(item)}")
            mime = answer.get_response_stream_by_id(f"get{i}").getvalue()
            require(f"Message-ID: <{message_id(i)}>".encode() in mime,
                    f"batch get{i}: {mime[:200]!r}")
        for i in read:
            item = answer.get_response_by_id(f"read{i}")
            require(item is not None and item.status == 200, f"batch read{i}: {failed(item)}")
        # msgraph-core reads only string bodies of items, so the error JSON is not in `item`;
        # the request log says the sandbox did not take the URL for any resource.
        item = answer.get_response_by_id("absolute")
        require(item is not None and item.status == 400,
                f"the item with an absolute URL: {failed(item)}, want Graph's 400")
        total, unread = await self.counts()
        require((total, unread) == (SEEDED - 2, SEEDED - 6),
                f"Inbox after $batch: {total}/{unread}")
        log = self.sb.request_log()
        batches = self.sb.count("POST", "/v1.0/$batch")
        items = sum(e["count"] for e in log["batch_items"]) - \
            sum(e["count"] for e in log_before["batch_items"])
        require(items == 7, f"the request log saw {items} batch items, want 7")
        unmatched = [e for e in log["batch_items"] if e["path"] == "(unmatched)"]
        require([(e["status"], e["count"]) for e in unmatched] == [(400, 1)],
                f"the absolute URL in the request log: {unmatched}")
        ok("$batch", f"3 MIME GETs + 3 PATCHes in {batches} POST, all 200 ({unread} unread); "
           "an absolute item URL 400 as in Graph")

    async def send(self):
        outbox_before = len(self.sb.outbox())
        mail = Message(
            subject="sent by msgraph-sdk",
            body=ItemBody(content_type=BodyType.Text, content="hello from msgraph-sdk"),
            to_recipients=[Recipient(email_address=EmailAddress(address=COLLEAGUE)),
                           Recipient(email_address=EmailAddress(address=EXTERNAL))])
        await self.user.send_mail.post(SendMailPostRequestBody(message=mail, save_to_sent_items=True))
        theirs = await self.client.users.by_user_id(COLLEAGUE).mail_folders \
            .by_mail_folder_id("inbox").messages.get()
        got = [m for m in theirs.value if m.subject == "sent by msgraph-sdk"]
        require(len(got) == 1, f"{COLLEAGUE}'s Inbox: {[m.subject for m in theirs.value]}")
        require(got[0].from_ and got[0].from_.email_address.address.lower() == USER,
                f"arrived from {got[0].from_ and got[0].from_.email_address.address}")
        body = got[0].body.content if got[0].body else ""
        require("hello from msgraph-sdk" in body, f"arrived with body {body!r}")
        out = self.sb.outbox()[outbox_before:]
        require(len(out) == 1 and out[0]["recipients"] == [EXTERNAL]
                and "Subject: sent by msgraph-sdk" in out[0]["mime"],
                f"outbox: {[(o['recipients'], o['mime'][:80]) for o in out]}")
        sent = await self.user.mail_folders.by_mail_folder_id("sentitems").messages.get()
        require([m.subject for m in sent.value] == ["sent by msgraph-sdk"],
                f"Sent Items: {[m.subject for m in sent.value]}")
        ok("sendMail", f"in {COLLEAGUE}'s Inbox, in the outbox to {EXTERNAL}, in Sent Items")

    async def delta_round(self, link=None):
        """One delta round to its deltaLink, 10 per page; returns (messages, deltaLink, pages)."""
        headers = HeadersCollection()
        headers.add("Prefer", "odata.maxpagesize=10")
        config = RequestConfiguration(
            headers=headers,
            query_parameters=DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
                select=["subject", "isRead"]))
        builder = self.inbox.messages.delta
        page = await (builder.with_url(link).get(request_configuration=RequestConfiguration(
            headers=headers)) if link else builder.get(request_configuration=config))
        seen, pages = list(page.value), 1
        while page.odata_next_link:
            page = await builder.with_url(page.odata_next_link).get(
                request_configuration=RequestConfiguration(headers=headers))
            seen.extend(page.value)
            pages += 1
            require(pages <= 10, "more than 10 delta pages")
        require(page.odata_delta_link, "the last delta page has no deltaLink")
        return seen, page.odata_delta_link, pages

    async def delta(self):
        total, _ = await self.counts()
        seen, link, pages = await self.delta_round()
        subjects = sorted(m.subject for m in seen)
        require(len(seen) == total and len(set(subjects)) == total,
                f"initial delta: {len(seen)} messages ({len(set(subjects))} distinct), Inbox {total}")
        require(pages == 3, f"initial delta in {pages} pages of at most 10, want 3 for {total}")
        ok("delta, initial", f"{len(seen)} messages in {pages} pages, then a deltaLink")

        for i in (SEEDED, SEEDED + 1):
            self.sb.inject(USER, subject(i), f"body {i:02}", message_id(i))
        await self.user.messages.by_message_id(self.ids[subject(10)]).delete()
        await self.user.messages.by_message_id(self.ids[subject(11)]).patch(Message(is_read=True))
        changes, _, _ = await self.delta_round(link)
        removed = [m.id for m in changes if m.additional_data.get("@removed") is not None]
        present = sorted(m.subject for m in changes if m.additional_data.get("@removed") is None)
        require(removed == [self.ids[subject(10)]], f"delta @removed: {removed}")
        want = [subject(11), subject(SEEDED), subject(SEEDED + 1)]
        require(present == want, f"delta changes: {present}, want {want}")
        changed = [m for m in changes if m.subject == subject(11)][0]
        require(changed.is_read is True, "the changed message comes back unread")
        ok("delta, from the deltaLink", "2 new, 1 changed, 1 @removed: exactly those")


async def run(base):
    sb = Sandbox(base)
    for i in range(SEEDED):
        sb.inject(USER, subject(i), f"body {i:02}", message_id(i))
    print(f"msgraph-sdk {VERSION} against {base}/v1.0 ({SEEDED} messages delivered to {USER})")
    host = urlparse(base).hostname
    credential = ClientSecretCredential(TENANT, APP, SECRET, authority=base,
                                        connection_verify=ca_file())
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_DEFAULT],
                                               allowed_hosts=[host])
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca_file()), timeout=60))
    adapter = GraphRequestAdapter(auth, http)
    adapter.base_url = f"{base}/v1.0"
    check = Check(sb, GraphServiceClient(request_adapter=adapter), adapter)
    try:
        await check.list_inbox()
        await check.mime()
        await check.mark_read()
        await check.move()
        await check.delete()
        await check.batch()
        await check.send()
        await check.delta()
        tokens = sb.token_requests()
        require(tokens == 1, f"{tokens} token requests, want 1 (azure-identity caches)")
        ok("tokens", "one token request for the whole run")
    finally:
        await credential.close()


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    asyncio.run(run(sys.argv[1].rstrip("/")))


if __name__ == "__main__":
    run_check("graph-sdk", main)
