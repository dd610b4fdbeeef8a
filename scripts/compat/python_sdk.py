"""Drive the tokenward sandbox emulator with Plaid's official Python library (plaid-python).

Usage: TOKENWARD_SANDBOX_URL=http://127.0.0.1:PORT CLIENT_ID=... SECRET=... python python_sdk.py

plaid-python checks every response against the models generated from Plaid's OpenAPI spec
(required fields, types, enum values), so a response shape the emulator gets wrong fails here.
Prints one line per step and never a token; exits non-zero on the first failure.
"""

import base64
import datetime
import http.server
import json
import os
import queue
import sys
import threading

import plaid
from plaid.api import plaid_api
from plaid.model.accounts_balance_get_request import AccountsBalanceGetRequest
from plaid.model.accounts_get_request import AccountsGetRequest
from plaid.model.country_code import CountryCode
from plaid.model.item_access_token_invalidate_request import ItemAccessTokenInvalidateRequest
from plaid.model.item_get_request import ItemGetRequest
from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest
from plaid.model.item_remove_request import ItemRemoveRequest
from plaid.model.item_webhook_update_request import ItemWebhookUpdateRequest
from plaid.model.link_token_create_request import LinkTokenCreateRequest
from plaid.model.link_token_create_request_user import LinkTokenCreateRequestUser
from plaid.model.products import Products
from plaid.model.sandbox_item_fire_webhook_request import SandboxItemFireWebhookRequest
from plaid.model.sandbox_item_reset_login_request import SandboxItemResetLoginRequest
from plaid.model.sandbox_public_token_create_request import SandboxPublicTokenCreateRequest
from plaid.model.transactions_get_request import TransactionsGetRequest
from plaid.model.transactions_get_request_options import TransactionsGetRequestOptions
from plaid.model.transactions_sync_request import TransactionsSyncRequest
from plaid.model.webhook_verification_key_get_request import WebhookVerificationKeyGetRequest

BASE = os.environ["TOKENWARD_SANDBOX_URL"]
CLIENT_ID = os.environ["CLIENT_ID"]
SECRET = os.environ["SECRET"]


def step(name):
    print(f"ok {name}", flush=True)


def fail(msg):
    print(f"FAIL {msg}", flush=True)
    sys.exit(1)


def client(client_id=CLIENT_ID, secret=SECRET):
    configuration = plaid.Configuration(
        host=BASE,
        api_key={"clientId": client_id, "secret": secret, "plaidVersion": "2020-09-14"},
    )
    return plaid_api.PlaidApi(plaid.ApiClient(configuration))


def plaid_error(call):
    """Runs call, which must fail with a Plaid error; returns the error object."""
    try:
        call()
    except plaid.ApiException as e:
        body = json.loads(e.body)
        for field in ("error_type", "error_code", "error_message", "display_message", "request_id"):
            if field not in body:
                fail(f"error body lacks {field}")
        return e.status, body
    fail("call succeeded but should have failed")


class Hooks(http.server.BaseHTTPRequestHandler):
    received = queue.Queue()

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        Hooks.received.put((self.headers.get("Plaid-Verification"), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    api = client()
    hooks = http.server.HTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{hooks.server_address[1]}/plaid"

    link = api.link_token_create(
        LinkTokenCreateRequest(
            user=LinkTokenCreateRequestUser(client_user_id="user-1"),
            client_name="tokenward compat",
            products=[Products("transactions")],
            country_codes=[CountryCode("US")],
            language="en",
            webhook=hook_url,
        )
    )
    if not link.link_token.startswith("link-sandbox-"):
        fail("link token format")
    step("link_token_create")

    public = api.sandbox_public_token_create(
        SandboxPublicTokenCreateRequest(
            institution_id="ins_109508", initial_products=[Products("transactions")]
        )
    )
    if not public.public_token.startswith("public-sandbox-"):
        fail("public token format")
    step("sandbox_public_token_create")

    exchange = api.item_public_token_exchange(
        ItemPublicTokenExchangeRequest(public_token=public.public_token)
    )
    token = exchange.access_token
    if not token.startswith("access-sandbox-"):
        fail("access token format")
    step("item_public_token_exchange")

    status, err = plaid_error(
        lambda: api.item_public_token_exchange(
            ItemPublicTokenExchangeRequest(public_token=public.public_token)
        )
    )
    if (status, err["error_code"]) != (400, "INVALID_PUBLIC_TOKEN"):
        fail(f"reused public token gave {status} {err['error_code']}")
    step("public token is single use")

    accounts = api.accounts_get(AccountsGetRequest(access_token=token))
    if not accounts.accounts or accounts.item.item_id != exchange.item_id:
        fail("accounts_get content")
    step(f"accounts_get ({len(accounts.accounts)} accounts)")

    balances = api.accounts_balance_get(AccountsBalanceGetRequest(access_token=token))
    if len(balances.accounts) != len(accounts.accounts):
        fail("balance accounts")
    step("accounts_balance_get")

    today = datetime.date.today()
    got = api.transactions_get(
        TransactionsGetRequest(
            access_token=token,
            start_date=today - datetime.timedelta(days=90),
            end_date=today,
            options=TransactionsGetRequestOptions(count=50, offset=0),
        )
    )
    if got.total_transactions < len(got.transactions) or not got.transactions:
        fail("transactions_get content")
    step(f"transactions_get ({len(got.transactions)} of {got.total_transactions})")

    cursor, added, pages = "", 0, 0
    while True:
        page = api.transactions_sync(TransactionsSyncRequest(access_token=token, cursor=cursor, count=100))
        added += len(page.added)
        cursor = page.next_cursor
        pages += 1
        if not page.has_more:
            break
        if pages > 1000:
            fail("transactions_sync never ends")
    step(f"transactions_sync ({added} added over {pages} pages)")

    item = api.item_get(ItemGetRequest(access_token=token))
    if item.item.item_id != exchange.item_id:
        fail("item_get item id")
    step("item_get")

    api.item_webhook_update(ItemWebhookUpdateRequest(access_token=token, webhook=hook_url))
    step("item_webhook_update")

    api.sandbox_item_fire_webhook(
        SandboxItemFireWebhookRequest(access_token=token, webhook_code="DEFAULT_UPDATE")
    )
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=10)
    kid = None
    while datetime.datetime.now() < deadline:
        try:
            jwt, body = Hooks.received.get(timeout=1)
        except queue.Empty:
            continue
        event = json.loads(body)
        if event.get("webhook_code") != "DEFAULT_UPDATE":
            continue
        header = json.loads(base64.urlsafe_b64decode(jwt.split(".")[0] + "=="))
        if header.get("alg") != "ES256":
            fail("webhook alg")
        kid = header["kid"]
        break
    if kid is None:
        fail("no DEFAULT_UPDATE webhook received")
    step("sandbox_item_fire_webhook (signed webhook received)")

    key = api.webhook_verification_key_get(WebhookVerificationKeyGetRequest(key_id=kid)).key
    if (key.kty, key.crv, key.alg, key.kid) != ("EC", "P-256", "ES256", kid):
        fail("verification key fields")
    step("webhook_verification_key_get")

    api.sandbox_item_reset_login(SandboxItemResetLoginRequest(access_token=token))
    status, err = plaid_error(lambda: api.accounts_get(AccountsGetRequest(access_token=token)))
    if (status, err["error_code"]) != (400, "ITEM_LOGIN_REQUIRED"):
        fail(f"after reset_login got {status} {err['error_code']}")
    step("sandbox_item_reset_login (ITEM_LOGIN_REQUIRED)")

    new_token = api.item_access_token_invalidate(
        ItemAccessTokenInvalidateRequest(access_token=token)
    ).new_access_token
    if new_token == token or not new_token.startswith("access-sandbox-"):
        fail("new access token")
    status, err = plaid_error(lambda: api.item_get(ItemGetRequest(access_token=token)))
    if (status, err["error_code"]) != (400, "INVALID_ACCESS_TOKEN"):
        fail(f"old token gave {status} {err['error_code']}")
    step("item_access_token_invalidate (old token rejected)")

    api.item_remove(ItemRemoveRequest(access_token=new_token))
    status, err = plaid_error(lambda: api.item_get(ItemGetRequest(access_token=new_token)))
    if err["error_code"] != "INVALID_ACCESS_TOKEN":
        fail(f"removed item gave {err['error_code']}")
    step("item_remove")

    status, err = plaid_error(
        lambda: client(secret="wrong-secret-0000000000000000").item_get(
            ItemGetRequest(access_token=new_token)
        )
    )
    if (err["error_type"], err["error_code"]) != ("INVALID_INPUT", "INVALID_API_KEYS"):
        fail(f"bad keys gave {err['error_type']} {err['error_code']}")
    step("bad credentials (INVALID_API_KEYS)")
    hooks.shutdown()


if __name__ == "__main__":
    main()
