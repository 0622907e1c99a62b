#!/usr/bin/env python3
"""Real-client check: MSAL Python, unchanged, against the sandbox's identity platform endpoints.

Usage: msal_check.py BASE_URL     (e.g. https://localhost:8443; REQUESTS_CA_BUNDLE and
                                  SSL_CERT_FILE name the CA the sandbox wrote with --tls)

MSAL is configured as its documentation says for an authority it does not know (`authority=`
the sandbox's tenant URL, `instance_discovery=False`: no instance discovery at
login.microsoftonline.com; it reads the sandbox's OpenID configuration instead), and then used
as its documentation shows. Steps, each checked against what the sandbox saw:

1. client credentials: `acquire_token_for_client` for Graph; a second call is answered from
   MSAL's token cache (`token_source` "cache", no second token request in the sandbox's request
   log); the token reads a mailbox over Graph; the same for the EWS resource (its own token,
   also cached);
2. device code: `initiate_device_flow`, a person approves the code (the admin API's
   `approve_device_code` stands in for the browser) while `acquire_token_by_device_flow` polls;
   the token and the id token name the person, and the token reads their own mailbox (`/me`);
3. refresh: `get_accounts` finds the person; `acquire_token_silent` answers from the cache, with
   `force_refresh=True` redeems the refresh token, for the EWS resource redeems it for another
   resource; `acquire_token_by_refresh_token` too; each new token works;
4. a declined device code ends the flow with `authorization_declined`;
5. errors: a wrong secret gives `invalid_client` AADSTS7000215 and an unknown app
   `unauthorized_client` AADSTS700016, each as MSAL's error dict (no exception), with the
   identity platform's fields (error_codes, trace and correlation ids), and nothing is cached.
Exits non-zero with a message on the first failure.
"""

import base64
import json
import sys
import threading
import time

import msal

from sandbox_admin import (APP, EWS_DEFAULT, GRAPH_DEFAULT, SECRET, TENANT_ID, Sandbox, ok,
                           require, run_check)

USER = "megan.bowen@contoso.example"
UNKNOWN_APP = "5f1c0ffe-0000-4000-8000-00000000beef"


def claims(jwt):
    """The claims of a JWT (no signature check: the sandbox is the issuer under test)."""
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def graph_status(sb, token, path):
    status, body = sb.call("GET", f"/v1.0{path}", headers={"Authorization": f"Bearer {token}"})
    require(status == 200, f"GET /v1.0{path} with the token: HTTP {status} {body}")
    return body


def client_credentials(sb):
    app = msal.ConfidentialClientApplication(
        APP, client_credential=SECRET, authority=sb.authority(), instance_discovery=False)
    before = sb.token_requests()
    first = app.acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    require("access_token" in first, f"client credentials: {first}")
    require(first.get("token_source") == "identity_provider",
            f"first token from {first.get('token_source')}, want the identity provider")
    second = app.acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    require("access_token" in second, f"second client credentials call: {second}")
    require(second.get("token_source") == "cache",
            f"second token from {second.get('token_source')}, want MSAL's cache")
    require(second["access_token"] == first["access_token"], "the cached token is another one")
    made = sb.token_requests() - before
    require(made == 1, f"{made} token requests for two acquire_token_for_client calls, want 1")
    c = claims(first["access_token"])
    require(c.get("aud") == "https://graph.microsoft.com" and "Mail.ReadWrite" in c.get("roles", []),
            f"token claims: aud {c.get('aud')}, roles {c.get('roles')}")
    folder = graph_status(sb, first["access_token"], f"/users/{USER}/mailFolders/inbox")
    ok("client credentials", f"1 token request for 2 calls (second: {second['token_source']}); "
       f"Graph reads {USER}'s {folder.get('displayName')}")

    ews = app.acquire_token_for_client(scopes=[EWS_DEFAULT])
    require(ews.get("token_source") == "identity_provider",
            f"EWS token from {ews.get('token_source')}: {ews}")
    again = app.acquire_token_for_client(scopes=[EWS_DEFAULT])
    require(again.get("token_source") == "cache" and again["access_token"] == ews["access_token"],
            f"second EWS token from {again.get('token_source')}")
    require(claims(ews["access_token"]).get("aud") == "https://outlook.office365.com",
            f"EWS token audience {claims(ews['access_token']).get('aud')}")
    made = sb.token_requests() - before
    require(made == 2, f"{made} token requests for 2 resources x 2 calls, want 2")
    ok("client credentials (EWS)", "its own token, the second call from the cache")


def device_code(sb):
    app = msal.PublicClientApplication(APP, authority=sb.authority(), instance_discovery=False)
    flow = app.initiate_device_flow(scopes=["Mail.ReadWrite"])
    require("user_code" in flow, f"initiate_device_flow: {flow}")
    require(flow["verification_uri"].startswith(sb.base) and flow["user_code"] in flow["message"],
            f"device flow: {flow['verification_uri']}, {flow['message']}")
    polls_before = sb.token_requests()

    # The person approves once MSAL has polled and been told to wait (authorization_pending).
    def approve():
        deadline = time.monotonic() + 30
        while sb.token_requests() == polls_before and time.monotonic() < deadline:
            time.sleep(0.1)
        sb.admin("approve_device_code", user_code=flow["user_code"], user=USER)

    approver = threading.Thread(target=approve)
    approver.start()
    result = app.acquire_token_by_device_flow(flow)
    approver.join()
    require("access_token" in result, f"device flow: {result}")
    polls = sb.token_requests() - polls_before
    require(polls >= 2, f"{polls} polls: the flow should have waited for the approval")
    require("refresh_token" in result, "device flow: no refresh token (offline_access)")
    id_claims = result.get("id_token_claims", {})
    require(id_claims.get("preferred_username") == USER and id_claims.get("tid") == TENANT_ID,
            f"id token: {id_claims}")
    c = claims(result["access_token"])
    require(c.get("upn", c.get("preferred_username")) == USER or c.get("oid") == id_claims.get("oid"),
            f"access token names {c}")
    me = graph_status(sb, result["access_token"], "/me/mailFolders/inbox")
    ok("device code", f"approved after {polls} polls; {USER}; /me reads {me.get('displayName')}")
    return app


def refresh(sb, app):
    accounts = app.get_accounts(username=USER)
    require(len(accounts) == 1, f"get_accounts: {accounts}")
    account = accounts[0]
    before = sb.token_requests()
    cached = app.acquire_token_silent(["Mail.ReadWrite"], account=account)
    require(cached is not None and cached.get("token_source") == "cache",
            f"acquire_token_silent: {cached}")
    require(sb.token_requests() == before, "a silent call for a cached token made a request")
    ok("silent, from the cache", "no token request")

    fresh = app.acquire_token_silent(["Mail.ReadWrite"], account=account, force_refresh=True)
    require(fresh is not None and "access_token" in fresh, f"force_refresh: {fresh}")
    require(fresh.get("token_source") == "identity_provider",
            f"force_refresh from {fresh.get('token_source')}")
    require(fresh["access_token"] != cached["access_token"], "force_refresh gave the old token")
    graph_status(sb, fresh["access_token"], "/me/mailFolders/inbox")
    require(sb.token_requests() == before + 1, "force_refresh: not exactly one token request")
    ok("silent, refreshed", "one refresh-token request, the new token reads /me")

    ews = app.acquire_token_silent(["https://outlook.office365.com/EWS.AccessAsUser.All"],
                                   account=account)
    require(ews is not None and "access_token" in ews, f"silent for EWS: {ews}")
    c = claims(ews["access_token"])
    require(c.get("aud") == "https://outlook.office365.com"
            and "EWS.AccessAsUser.All" in c.get("scp", "").split(),
            f"EWS token: aud {c.get('aud')}, scp {c.get('scp')}")
    before = sb.token_requests()
    again = app.acquire_token_silent(["https://outlook.office365.com/EWS.AccessAsUser.All"],
                                     account=account)
    require(again is not None and again.get("token_source") == "cache"
            and again["access_token"] == ews["access_token"] and sb.token_requests() == before,
            f"second silent call for EWS: {again and again.get('token_source')}")
    ok("silent, other resource", f"the refresh token redeemed for EWS (scp {c.get('scp')}), "
       "then from the cache")

    rt = app.token_cache.find(msal.TokenCache.CredentialType.REFRESH_TOKEN)
    require(len(rt) == 1, f"{len(rt)} refresh tokens in the cache, want 1 (rotated in place)")
    by_rt = app.acquire_token_by_refresh_token(rt[0]["secret"], scopes=["Mail.ReadWrite"])
    require("access_token" in by_rt, f"acquire_token_by_refresh_token: {by_rt}")
    graph_status(sb, by_rt["access_token"], "/me/mailFolders/inbox")
    ok("by refresh token", "acquire_token_by_refresh_token: a new token that reads /me")


def declined(sb):
    app = msal.PublicClientApplication(APP, authority=sb.authority(), instance_discovery=False)
    flow = app.initiate_device_flow(scopes=["Mail.ReadWrite"])
    require("user_code" in flow, f"initiate_device_flow: {flow}")
    sb.admin("decline_device_code", user_code=flow["user_code"])
    result = app.acquire_token_by_device_flow(flow)
    require(result.get("error") == "authorization_declined", f"declined device code: {result}")
    require(not app.get_accounts(), "a declined flow left an account in the cache")
    ok("device code declined", f"{result['error']}")


def error_shape(result, error, code, what):
    require("access_token" not in result, f"{what}: got a token")
    require(result.get("error") == error, f"{what}: error {result.get('error')}, want {error}")
    require(result.get("error_codes") == [code], f"{what}: error_codes {result.get('error_codes')}")
    desc = result.get("error_description", "")
    require(desc.startswith(f"AADSTS{code}:") and "Trace ID:" in desc and "Correlation ID:" in desc,
            f"{what}: error_description {desc!r}")
    require(result.get("trace_id") and result.get("correlation_id") and result.get("timestamp"),
            f"{what}: no trace_id/correlation_id/timestamp: {result}")
    require(desc.split("\r\n")[0].split(": ", 1)[1], f"{what}: empty message")


def errors(sb):
    wrong = msal.ConfidentialClientApplication(
        APP, client_credential="not-the-secret", authority=sb.authority(), instance_discovery=False)
    result = wrong.acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    error_shape(result, "invalid_client", 7000215, "wrong secret")
    require(not wrong.token_cache.find(msal.TokenCache.CredentialType.ACCESS_TOKEN),
            "wrong secret: something was cached")
    ok("wrong secret", f"{result['error']} AADSTS7000215")

    unknown = msal.ConfidentialClientApplication(
        UNKNOWN_APP, client_credential=SECRET, authority=sb.authority(), instance_discovery=False)
    result = unknown.acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    error_shape(result, "unauthorized_client", 700016, "unknown app")
    require(UNKNOWN_APP in result["error_description"], "unknown app: the description names no app")
    ok("unknown app", f"{result['error']} AADSTS700016")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sb = Sandbox(sys.argv[1])
    print(f"MSAL Python {msal.__version__} against {sb.authority()}")
    client_credentials(sb)
    app = device_code(sb)
    refresh(sb, app)
    declined(sb)
    errors(sb)


if __name__ == "__main__":
    run_check("msal", main)
