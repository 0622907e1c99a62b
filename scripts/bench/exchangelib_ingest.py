#!/usr/bin/env python3
"""Peer ingest job with exchangelib (EWS), written the way exchangelib's docs recommend for bulk work.

  exchangelib_ingest.py --base-url URL --tenant T --client-id ID --client-secret S \
      --mailbox ADDR --routes ROUTES.json --ack read --result OUT.json [--ca-bundle CA.pem]

The job, app-only with ExchangeImpersonation of ADDR:
  1. list the ids of every unread Inbox message: FindItem through a QuerySet restricted to the
     id fields (`values_list('id', 'changekey')`) with `page_size = 1000`, the size exchangelib
     itself uses for id-only listings (QuerySet.delete/send/copy/move) and EWS's FindItem limit;
  2. per chunk of 100 ids (exchangelib's default and documented chunk size): fetch the MIME with
     `account.fetch(ids, only_fields=['mime_content'], chunk_size=100)` (one GetItem per chunk),
     parse each message with Python's email package and route it;
  3. mark the chunk read with `account.bulk_update([(item, ['is_read'])], chunk_size=100)` (one
     UpdateItem per chunk).
Ids are listed before anything is marked read because FindItem pages by offset: marking items
read while paging the unread view would shift the offsets and skip messages.

The library is used unchanged. Its OAuth2Credentials class requests client-credentials tokens
from login.microsoftonline.com; the subclass below only points `token_url` at the sandbox's
authority, so token fetching and refreshing stay exchangelib's own (requests-oauthlib).
"""

import os
import sys

# The CA bundle must be known before requests is imported by exchangelib.
if "--ca-bundle" in sys.argv:
    _i = sys.argv.index("--ca-bundle")
    if _i + 1 < len(sys.argv):
        os.environ["REQUESTS_CA_BUNDLE"] = sys.argv[_i + 1]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import exchangelib  # noqa: E402
from exchangelib import (  # noqa: E402
    IMPERSONATION,
    OAUTH2,
    Account,
    Configuration,
    FaultTolerance,
    Identity,
    OAuth2Credentials,
)

import ingest_common as common  # noqa: E402

PAGE_SIZE = 1000  # FindItem page (exchangelib's own choice for id-only listings; the EWS maximum)
CHUNK_SIZE = 100  # GetItem / UpdateItem items per request (exchangelib's default CHUNK_SIZE)


class SandboxOAuth2Credentials(OAuth2Credentials):
    """exchangelib's client-credentials flow, with the token endpoint of the sandbox's authority."""

    def __init__(self, *args, token_endpoint, **kwargs):
        super().__init__(*args, **kwargs)
        self._token_endpoint = token_endpoint

    @property
    def token_url(self):
        return self._token_endpoint


def chunks(seq, n):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def main():
    args = common.parse_args(__doc__.splitlines()[0])
    router = common.Router.load(args.routes)
    result = common.Result(f"exchangelib {exchangelib.__version__}", secrets=[args.client_secret])
    base = args.base_url.rstrip("/")
    listed = None
    try:
        creds = SandboxOAuth2Credentials(
            client_id=args.client_id,
            client_secret=args.client_secret,
            tenant_id=args.tenant,
            identity=Identity(primary_smtp_address=args.mailbox),
            token_endpoint=common.token_url(base, args.tenant),
        )
        # FaultTolerance: the retry policy exchangelib's docs recommend for long-running jobs
        # (waits out ErrorServerBusy / 503 with back-off instead of failing at once).
        config = Configuration(service_endpoint=f"{base}/EWS/Exchange.asmx", credentials=creds,
                               auth_type=OAUTH2, retry_policy=FaultTolerance(max_wait=600))
        account = Account(primary_smtp_address=args.mailbox, config=config, autodiscover=False,
                          access_type=IMPERSONATION)

        qs = account.inbox.filter(is_read=False).values_list("id", "changekey")
        qs.page_size = PAGE_SIZE
        ids = list(qs)
        listed = len(ids)

        for chunk in chunks(ids, CHUNK_SIZE):
            updates = []
            for item in account.fetch(ids=chunk, only_fields=["mime_content"],
                                      chunk_size=CHUNK_SIZE):
                if isinstance(item, Exception):
                    result.error(f"GetItem: {item!r}")
                    continue
                if not item.mime_content:
                    result.error(f"GetItem: no MIME for {item.id[:16]}...")
                    continue
                result.fetched += 1
                try:
                    msg = common.parse_mime(item.mime_content)
                    result.count_route(router.route(msg))
                except Exception as e:  # a bad message is reported, the job goes on
                    result.error(f"parse/route: {e!r}")
                item.is_read = True
                updates.append((item, ["is_read"]))
            if updates:
                for r in account.bulk_update(items=updates, chunk_size=CHUNK_SIZE):
                    if isinstance(r, Exception):
                        result.error(f"UpdateItem: {r!r}")
                    else:
                        result.acknowledged += 1
    except Exception as e:  # the job stops; OUT.json says why
        result.error(f"job: {e!r}")
    return result.write(args.result, expected=listed)


if __name__ == "__main__":
    sys.exit(main())
