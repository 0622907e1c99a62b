#!/usr/bin/env python3
"""Peer ingest job with Microsoft's msgraph-sdk for Python (Graph), written as its docs recommend.

  msgraph_ingest.py --base-url URL --tenant T --client-id ID --client-secret S \
      --mailbox ADDR --routes ROUTES.json --ack read --result OUT.json [--ca-bundle CA.pem]

The job, app-only (client credentials) on /users/{ADDR}:
  1. list the unread Inbox messages with the ids only: `$filter=isRead eq false`, `$select=id`,
     `$top=1000` (the largest page the message list takes), following `@odata.nextLink` with
     msgraph-core's PageIterator (the SDK's documented way to page a collection);
  2. fetch the MIME (`GET messages/{id}/$value`) of 20 messages per `POST /$batch` (JSON
     batching's limit) with msgraph-core's BatchRequestContent; parse and route each message;
  3. mark those 20 read (`PATCH messages/{id}` with `{"isRead": true}`) in one more `$batch`.
Up to --concurrency batches are in flight at once (default 4: Exchange Online allows four
concurrent requests per app and mailbox); the SDK's client is asyncio-based, so this is the
SDK used as designed, not a workaround.
Ids are listed before anything is marked read: the unread view pages by offset ($skip), so
marking messages read while paging it would skip messages.

Credential: azure-identity's ClientSecretCredential (async), unchanged, with the sandbox as its
authority host; the SDK's GraphRequestAdapter gets the sandbox's /v1.0 as base URL and an
httpx client that trusts the sandbox's CA.
"""

import asyncio
import os
import ssl
import sys
from urllib.parse import urlparse

import httpx
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph._version import VERSION
from msgraph.generated.models.message import Message
from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)
from msgraph_core import GraphClientFactory
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem
from msgraph_core.tasks.page_iterator import PageIterator

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ingest_common as common  # noqa: E402

PAGE_SIZE = 1000  # $top: the largest page GET .../messages returns
BATCH_SIZE = 20  # JSON batching: at most 20 requests per $batch
DEFAULT_CONCURRENCY = 4  # Exchange Online: 4 concurrent requests per app and mailbox


async def run(args, result, router):
    base = args.base_url.rstrip("/")
    host = urlparse(base).hostname
    verify = ssl.create_default_context(cafile=args.ca_bundle) if args.ca_bundle else True

    credential = ClientSecretCredential(
        tenant_id=args.tenant,
        client_id=args.client_id,
        client_secret=args.client_secret,
        authority=base,
        connection_verify=args.ca_bundle or True,
    )
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=["https://graph.microsoft.com/.default"], allowed_hosts=[host])
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=verify, timeout=120))
    adapter = GraphRequestAdapter(auth, http)
    adapter.base_url = f"{base}/v1.0"
    client = GraphServiceClient(request_adapter=adapter)
    user = client.users.by_user_id(args.mailbox)

    try:
        # 1. The unread ids, a page of 1000 at a time.
        query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            filter="isRead eq false", select=["id"], top=PAGE_SIZE)
        first = await user.mail_folders.by_mail_folder_id("inbox").messages.get(
            request_configuration=RequestConfiguration(query_parameters=query))
        ids = []
        if first is not None:
            pages = PageIterator(first, adapter)

            def collect(m):
                ids.append(m.id)
                return True

            await pages.iterate(collect)
        listed = len(ids)

        # 2 and 3: per 20 ids, one $batch of MIME fetches and one of mark-read PATCHes.
        async def one_batch(chunk):
            fetch = BatchRequestContent()
            for i, mid in enumerate(chunk):
                info = user.messages.by_message_id(mid).content.to_get_request_information()
                fetch.add_request(str(i), BatchRequestItem(info, id=str(i)))
            got = await client.batch.post(fetch)
            read = BatchRequestContent()
            for i, mid in enumerate(chunk):
                item = got.get_response_by_id(str(i))
                if item is None or item.status != 200:
                    status = None if item is None else item.status
                    result.error(f"GET $value: status {status}")
                    continue
                mime = got.get_response_stream_by_id(str(i))
                if mime is None:
                    result.error("GET $value: no body")
                    continue
                result.fetched += 1
                try:
                    msg = common.parse_mime(mime.getvalue())
                    result.count_route(router.route(msg))
                except Exception as e:  # a bad message is reported, the job goes on
                    result.error(f"parse/route: {e!r}")
                info = user.messages.by_message_id(mid).to_patch_request_information(
                    Message(is_read=True))
                read.add_request(str(i), BatchRequestItem(info, id=str(i)))
            if not read.requests:
                return
            done = await client.batch.post(read)
            for rid in read.requests:
                item = done.get_response_by_id(rid)
                if item is not None and item.status == 200:
                    result.acknowledged += 1
                else:
                    result.error(f"PATCH isRead: status {None if item is None else item.status}")

        # --concurrency workers share one iterator over the chunks (asyncio is single-threaded,
        # so no lock is needed): at most that many batches in flight, and no task per chunk.
        starts = iter(range(0, len(ids), BATCH_SIZE))

        async def worker():
            for i in starts:
                await one_batch(ids[i:i + BATCH_SIZE])

        await asyncio.gather(*(worker() for _ in range(max(1, args.concurrency))))
        return listed
    finally:
        await credential.close()


def main():
    args = common.parse_args(__doc__.splitlines()[0], extra=lambda p: p.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY,
        help="$batch requests in flight at once (default 4)"))
    router = common.Router.load(args.routes)
    result = common.Result(f"msgraph-sdk {VERSION}", secrets=[args.client_secret])
    listed = None
    try:
        listed = asyncio.run(run(args, result, router))
    except Exception as e:  # the job stops; OUT.json says why
        result.error(f"job: {e!r}")
    return result.write(args.result, expected=listed)


if __name__ == "__main__":
    sys.exit(main())
