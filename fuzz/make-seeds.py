#!/usr/bin/env python3
"""Writes the seed corpora for the tokenward fuzz targets into corpus/<target>/.

The output is deterministic (the "random" bytes come from SHA-256 in counter mode over a
fixed label), so running this again reproduces the committed files byte for byte. Only the
files named below are written; other files in the corpus directories are left alone.

Envelope format v1, all integers big-endian:
    format (1) = 0x01 | algorithm (1) = 0x01 | KEK version (4, u32, non-zero)
    | wrapped-key length L (2, u16, 1..=1024) | wrapped key (L) | nonce (12)
    | ciphertext (n) | tag (16)
Text form: "twe1:" + base64url without padding of the binary form.

Usage: python3 fuzz/make-seeds.py
"""

import base64
import hashlib
import hmac
import json
import os
import struct

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

FORMAT_V1 = 0x01
ALG_AES256GCM = 0x01
KEYRING_WRAPPED_LEN = 60  # what the in-process keyring writes
NONCE_LEN = 12
TAG_LEN = 16
TEXT_PREFIX = b"twe1:"


def pseudo_random(label, n):
    """n deterministic bytes derived from label."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(b"tokenward-seed:%s:%d" % (label.encode(), counter)).digest()
        counter += 1
    return bytes(out[:n])


def envelope(label, kek_version=1, wrapped_len=KEYRING_WRAPPED_LEN, plaintext_len=51,
             fmt=FORMAT_V1, alg=ALG_AES256GCM, declared_len=None):
    """A well-formed-looking binary envelope with a pseudo-random body."""
    declared = wrapped_len if declared_len is None else declared_len
    header = struct.pack(">BBIH", fmt, alg, kek_version, declared)
    body = pseudo_random(label, wrapped_len + NONCE_LEN + plaintext_len + TAG_LEN)
    return header + body


def text(binary):
    return TEXT_PREFIX + base64.urlsafe_b64encode(binary).rstrip(b"=")


def bytes_seeds():
    good = envelope("bytes-good")
    return {
        "empty": b"",
        "well-formed-token": good,
        "well-formed-empty-plaintext": envelope("bytes-empty-pt", plaintext_len=0),
        "well-formed-min-wrapped-key": envelope("bytes-min", wrapped_len=1, plaintext_len=4),
        "well-formed-max-wrapped-key": envelope("bytes-max", wrapped_len=1024, plaintext_len=8),
        "truncated-header": good[:5],
        "truncated-body": good[:8 + 40],
        "truncated-before-tag": good[:-TAG_LEN],
        "bad-format-version": envelope("bytes-fmt", fmt=0x02),
        "bad-algorithm-zero": envelope("bytes-alg0", alg=0x00),
        "bad-algorithm-reserved": envelope("bytes-alg3", alg=0x03),
        "zero-kek-version": envelope("bytes-zero", kek_version=0),
        "max-kek-version": envelope("bytes-maxv", kek_version=0xFFFFFFFF),
        "zero-wrapped-length": envelope("bytes-l0", wrapped_len=0, declared_len=0),
        "oversized-wrapped-length": envelope("bytes-l1025", wrapped_len=16, declared_len=1025),
    }


def text_seeds():
    good = envelope("text-good")
    encoded = text(good)
    return {
        "empty": b"",
        "prefix-only": TEXT_PREFIX,
        "well-formed-token": encoded,
        "well-formed-min-wrapped-key": text(envelope("text-min", wrapped_len=1, plaintext_len=0)),
        "truncated-envelope": text(good[:30]),
        "zero-kek-version": text(envelope("text-zero", kek_version=0)),
        "bad-algorithm": text(envelope("text-alg", alg=0x02)),
        "wrong-prefix": b"twe2:" + encoded[len(TEXT_PREFIX):],
        "no-prefix": encoded[len(TEXT_PREFIX):],
        "bad-base64-chars": TEXT_PREFIX + b"!!not*base64~~",
        "padded-base64": TEXT_PREFIX + base64.urlsafe_b64encode(good[:-1]),
        "standard-alphabet": TEXT_PREFIX + base64.b64encode(good).rstrip(b"="),
        # 196 base64 characters plus one: no byte string encodes to a length of 1 mod 4.
        "impossible-length": encoded + b"A",
        "trailing-newline": encoded + b"\n",
        "invalid-utf8": TEXT_PREFIX + b"\xff\xfe\x80",
    }


def round_trip_seeds():
    token = b"access-sandbox-8ab976e6-64bc-4b38-98f7-731e7a349970"
    return {
        "empty": b"",
        "context-only": b"item-123",
        "short-context": b"abc",
        "access-token": b"item-123" + token,
        "nul-context-value": b"\x00" * 8 + token,
        "non-utf8-context": b"\xff\xfe\xfd\xfc\xc3\x28\xa0\xa1" + b"secret",
        # The 8-byte context head ends inside the 3-byte UTF-8 encoding of U+20AC.
        "split-multibyte-char": b"item-id" + "\u20ac plaintext".encode(),
        "binary-plaintext": b"item-bin" + pseudo_random("rt-binary", 200),
        "kilobyte-plaintext": b"item-big" + pseudo_random("rt-big", 1024),
    }


def write(target, seeds):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    for name, data in sorted(seeds.items()):
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
    print(f"{target}: {len(seeds)} seeds")


def fake_uuid(label):
    """A deterministic UUID-shaped string."""
    h = pseudo_random(label, 16).hex()
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def fake_id(label, n=37):
    """A deterministic Plaid-style alphanumeric id (item_id, account_id, ...)."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(alphabet[b % len(alphabet)] for b in pseudo_random(label, n))


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def pretty(value):
    return json.dumps(value, indent=2).encode()


def nested(depth, leaf=b"1", key=None):
    """`depth` nested arrays (or objects under `key`) around `leaf`."""
    if key is None:
        return b"[" * depth + leaf + b"]" * depth
    return b'{"%s":' % key * depth + leaf + b"}" * depth


# The scrubber's nesting limit (serde_json's default): MAX_JSON_DEPTH in src/json.rs.
MAX_JSON_DEPTH = 127


def redact_json_seeds():
    access = "access-sandbox-" + fake_uuid("json-access")
    public = "public-production-" + fake_uuid("json-public")
    link = "link-development-" + fake_uuid("json-link")
    processor = "processor-sandbox-" + fake_uuid("json-processor")
    client_id = pseudo_random("json-client-id", 12).hex()
    secret = pseudo_random("json-secret", 15).hex()
    item_id = fake_id("json-item")
    account_id = fake_id("json-account")
    transactions = {
        "accounts": [{
            "account_id": account_id,
            "balances": {"available": 100.0, "current": 110.0, "iso_currency_code": "USD",
                         "limit": None, "unofficial_currency_code": None},
            "mask": "0000",
            "name": "Plaid Checking",
            "official_name": "Plaid Gold Standard 0% Interest Checking",
            "subtype": "checking",
            "type": "depository",
        }],
        "item": {"item_id": item_id, "institution_id": "ins_109508", "webhook": "https://example.com/hook",
                 "error": None, "available_products": ["balance"], "billed_products": ["transactions"]},
        "request_id": fake_id("json-request", 15),
        "total_transactions": 2,
        "transactions": [{
            "account_id": account_id,
            "amount": 4.33 + i,
            "authorized_date": "2024-01-0%d" % (i + 1),
            "category": ["Food and Drink", "Restaurants", "Coffee Shop"],
            "date": "2024-01-0%d" % (i + 1),
            "iso_currency_code": "USD",
            "location": {"city": "San Francisco", "region": "CA", "lat": 37.77, "lon": -122.41},
            "merchant_name": "Caf\u00e9 Plaid",
            "name": "CAFE PLAID #%d SAN FRANCISCO" % i,
            "payment_channel": "in store",
            "payment_meta": {"reference_number": None, "ppd_id": None},
            "pending": False,
            "pending_transaction_id": None,
            "transaction_id": fake_id("json-tx-%d" % i),
        } for i in range(2)],
    }
    auth = {
        "accounts": [{"account_id": account_id, "mask": "0000", "name": "Plaid Checking"}],
        "numbers": {
            "ach": [{"account": "1111222233330000", "account_id": account_id,
                     "routing": "011401533", "wire_routing": "021000021"}],
            "eft": [{"account": "111122223333", "account_id": account_id,
                     "branch": "01140", "institution": "021"}],
        },
        "request_id": fake_id("json-auth-request", 15),
    }
    request_dump = {
        "method": "POST",
        "url": "https://sandbox.plaid.com/transactions/get",
        "headers": {"Content-Type": "application/json", "PLAID-CLIENT-ID": client_id,
                    "PLAID-SECRET": secret, "Authorization": "Bearer " + secret + "x1"},
        "body": json.dumps({"client_id": client_id, "secret": secret, "access_token": access,
                            "start_date": "2024-01-01", "end_date": "2024-02-01"}),
    }
    webhook = {
        "webhook_type": "ITEM", "webhook_code": "ERROR", "item_id": item_id,
        "error": {"error_type": "ITEM_ERROR", "error_code": "ITEM_LOGIN_REQUIRED",
                  "error_message": "the login details of this item have changed",
                  "display_message": None, "status": 400},
        "environment": "sandbox",
    }
    escaped_token = access.replace("-", "\\u002d").replace("a", "\\u0061", 1)
    return {
        # Well-formed Plaid payloads.
        "transactions-get-response": pretty(transactions),
        "transactions-get-compact": compact(transactions),
        "transactions-get-request": compact({"client_id": client_id, "secret": secret,
                                             "access_token": access, "start_date": "2024-01-01",
                                             "end_date": "2024-02-01",
                                             "options": {"count": 100, "offset": 0}}),
        "public-token-exchange-response": compact({"access_token": access, "item_id": item_id,
                                                   "request_id": fake_id("json-x-req", 15)}),
        "link-token-create-response": compact({"link_token": link, "expiration": "2024-01-01T00:00:00Z",
                                               "request_id": fake_id("json-l-req", 15)}),
        "processor-token-response": compact({"processorToken": processor, "request_id": "r1"}),
        "auth-get-response": pretty(auth),
        "request-dump-with-headers": pretty(request_dump),
        "webhook-item-error": compact(webhook),
        "camel-and-kebab-keys": compact({"accessToken": access, "Public-Token": public,
                                         "CLIENT_SECRET": secret, "wireRouting": "021000021",
                                         "nested": [{"Access-Token": {"deep": [access]}}]}),
        "token-in-free-text": compact({"note": "exchanged %s for %s, wire to 021000021 today"
                                       % (public, access), "amount": 12.5}),
        "token-as-key": compact({access: {"item_id": item_id}, "ok": True}),
        "escaped-token": b'{"note":"' + escaped_token.encode() + b'","escapes":"\\"\\\\\\/\\b\\f\\n\\r\\t"}',
        "surrogate-pair-and-unicode": '{"merchant_name":"Caf\u00e9 \\ud83d\\ude00 \u00fc\u2028","name":"\\u00e9"}'.encode(),
        "placeholders-already": compact({"access_token": "[REDACTED:plaid.access_token]",
                                         "secret": "[REDACTED:plaid.client_secret fp1:0123456789abcdef]",
                                         "note": "[REDACTED:http.bearer]"}),
        "redacted-values-of-every-type": compact({"secret": {"a": [1, {"b": None}]}, "account": [1, 2],
                                                  "routing": 11401533, "password": True,
                                                  "api_key": None, "client_id": -1.5e3}),
        "top-level-string": compact(access),
        "top-level-number": b" -0.5e-3 ",
        "top-level-null": b"null",
        "empty-containers": b'{"a":[],"b":{},"c":[{}],"secret":[]}',
        "big-number": b'{"amount":1e400,"n":123456789012345678901234567890}',
        "deep-arrays-at-limit": nested(MAX_JSON_DEPTH),
        "deep-objects-at-limit": nested(MAX_JSON_DEPTH, b'"' + access.encode() + b'"', b"a"),
        "deep-redacted-subtree": b'{"secret":' + nested(MAX_JSON_DEPTH - 1) + b"}",
        "duplicate-keys": b'{"a":1,"a":"' + access.encode() + b'","access_token":1,"access_token":2}',
        # Malformed documents.
        "empty": b"",
        "whitespace-only": b" \n\t\r ",
        "truncated-object": compact(webhook)[:60],
        "truncated-in-escape": b'{"a":"\\u00',
        "trailing-comma": b'{"a":1,}',
        "missing-colon": b'{"a" 1}',
        "unterminated-string": b'{"access_token":"' + access.encode(),
        "bad-escape": b'["\\x41"]',
        "lone-high-surrogate": b'["\\ud800"]',
        "lone-low-surrogate": b'["\\udc00 "]',
        "high-surrogate-then-letter": b'["\\ud800\\u0041"]',
        "invalid-utf8": b'{"name":"caf\xc3"}',
        "overlong-utf8": b'["\xc0\xaf"]',
        "control-character": b'["tab\there"]',
        "byte-order-mark": b"\xef\xbb\xbf{}",
        "trailing-data": b'{"a":1} {"b":2}',
        "leading-zero": b"[01]",
        "bare-minus": b"[-]",
        "dot-without-digits": b"[1.]",
        "exponent-without-digits": b"[1e+]",
        "literal-typo": b"[nul, tru]",
        "mismatched-brackets": b'{"a":[1,2}]',
        "single-quotes": b"{'access_token':'x'}",
        "deep-arrays-over-limit": nested(MAX_JSON_DEPTH + 1),
        "deep-objects-over-limit": nested(MAX_JSON_DEPTH + 1, b"1", b"k"),
    }


def redact_text_seeds():
    access = "access-production-" + fake_uuid("text-access")
    public = "public-sandbox-" + fake_uuid("text-public")
    secret = pseudo_random("text-secret", 15).hex()
    client_id = pseudo_random("text-client-id", 12).hex()
    jwt = "eyJhbGciOiJFUzI1NiJ9.eyJpYXQiOjE2MDAwMDAwMDB9.c2lnbmF0dXJlLWJ5dGVz"
    return {
        "empty": b"",
        "clean-log-line": b"2024-01-15T10:00:00Z INFO sync done items=3 amount=12.34 item_id=eVBnVMp7zdTJ",
        "token-in-log-line": ("exchange ok public_token=%s access_token=%s" % (public, access)).encode(),
        "bearer-header": ("Authorization: Bearer %sx1 trailing" % secret).encode(),
        "basic-header": b"Authorization: Basic dXNlcjpwYXNzd29yZA== next",
        "plaid-headers": ("PLAID-CLIENT-ID: %s\r\nPLAID-SECRET: %s\r\n" % (client_id, secret)).encode(),
        "json-in-text": ('body={"client_id":"%s","secret":"%s","account": "1111222233330000", "routing": "011401533"}'
                         % (client_id, secret)).encode(),
        "routing-in-text": b"wire to 021000021 today; not 123456789 or 0210000210",
        "jwt": ("verification header " + jwt).encode(),
        "placeholders": b"[REDACTED:plaid.access_token] [REDACTED:custom.x fp1:0123456789abcdef] [REDACTED:]",
        "lookalikes": b"token_type=bearer total_tokens=123 link_session_id=abc sandbox-access public-api",
        "invalid-utf8": b"token \xff\xfe access-sandbox-\xc3\x28 end",
        "multibyte": ("caf\u00e9 \u2014 %s \U0001f600" % access).encode(),
        "long-token-id": ("access-sandbox-" + "a1" * 60).encode(),
    }


# NIST P-256 (SEC 2 secp256r1), affine arithmetic; enough to sign seed JWTs deterministically.
P256_P = 2**256 - 2**224 + 2**192 + 2**96 - 1
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
          0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)


def p256_add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P256_P == 0:
        return None
    if a == b:
        lam = (3 * a[0] * a[0] - 3) * pow(2 * a[1], -1, P256_P) % P256_P
    else:
        lam = (b[1] - a[1]) * pow(b[0] - a[0], -1, P256_P) % P256_P
    x = (lam * lam - a[0] - b[0]) % P256_P
    return (x, (lam * (a[0] - x) - a[1]) % P256_P)


def p256_mul(k, point):
    out = None
    while k:
        if k & 1:
            out = p256_add(out, point)
        point = p256_add(point, point)
        k >>= 1
    return out


def es256_sign(d, message, label):
    """r || s over SHA-256(message); the nonce is derived from the key and message (seeds only)."""
    e = int.from_bytes(hashlib.sha256(message).digest(), "big")
    k = int.from_bytes(hashlib.sha256(b"nonce:%d:%s:" % (d, label.encode()) + message).digest(), "big") % P256_N
    r = p256_mul(k, P256_G)[0] % P256_N
    s = pow(k, -1, P256_N) * (e + r * d) % P256_N
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


# The webhook_jwt hook (tokenward_plaid::webhooks::fuzzing) verifies at FUZZ_NOW against a
# key source that knows these ids; the fuzz key's private scalar is derived here, its public
# point is FUZZ_X/FUZZ_Y in the hook. Input: Plaid-Verification value, "\n", body.
FUZZ_NOW = 1_700_000_000
FUZZ_KID = "fuzz-key-1"
FUZZ_D = int.from_bytes(pseudo_random("webhook-fuzz-key", 32), "big") % P256_N


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def jwt(header, payload, d=FUZZ_D, signature=None, label="jwt"):
    """Compact JWS over the given header and payload (dicts or raw bytes), ES256-signed."""
    h = header if isinstance(header, bytes) else compact(header)
    p = payload if isinstance(payload, bytes) else compact(payload)
    signing_input = b64url(h) + b"." + b64url(p)
    if signature is None:
        signature = es256_sign(d, signing_input, label)
    return signing_input + b"." + b64url(signature)


def plaid_jwt(body, iat=FUZZ_NOW - 10, kid=FUZZ_KID, d=FUZZ_D, alg="ES256", label="plaid"):
    return jwt({"alg": alg, "kid": kid, "typ": "JWT"},
               {"iat": iat, "request_body_sha256": hashlib.sha256(body).hexdigest()}, d=d, label=label)


def webhook_bodies():
    item_id = fake_id("wh-item")
    common = {"item_id": item_id, "user_id": "usr_" + fake_id("wh-user", 14), "environment": "sandbox"}
    error = {"error_type": "ITEM_ERROR", "error_code": "ITEM_LOGIN_REQUIRED",
             "error_code_reason": "OAUTH_INVALID_TOKEN",
             "error_message": "the login details of this item have changed",
             "display_message": None, "status": 400}
    item = lambda code, **extra: {"webhook_type": "ITEM", "webhook_code": code, **common, **extra}
    tx = lambda code, **extra: {"webhook_type": "TRANSACTIONS", "webhook_code": code, **common, **extra}
    return {
        "item-error": item("ERROR", error=error),
        "item-pending-expiration": item("PENDING_EXPIRATION", consent_expiration_time="2020-01-15T13:25:17.766Z"),
        "item-pending-disconnect": item("PENDING_DISCONNECT", reason="INSTITUTION_MIGRATION",
                                        disconnect_time="2020-01-15T13:25:17.766Z"),
        "item-user-permission-revoked": item("USER_PERMISSION_REVOKED",
                                             error=dict(error, error_code="USER_PERMISSION_REVOKED")),
        "item-user-account-revoked": item("USER_ACCOUNT_REVOKED", account_id=fake_id("wh-account")),
        "item-login-repaired": item("LOGIN_REPAIRED"),
        "item-new-accounts-available": item("NEW_ACCOUNTS_AVAILABLE", error=None),
        "item-webhook-update-acknowledged": item("WEBHOOK_UPDATE_ACKNOWLEDGED", error=None,
                                                 new_webhook_url="https://example.com/webhook"),
        "tx-sync-updates-available": tx("SYNC_UPDATES_AVAILABLE", initial_update_complete=True,
                                        historical_update_complete=False),
        "tx-initial-update": tx("INITIAL_UPDATE", error=None, new_transactions=19),
        "tx-historical-update": tx("HISTORICAL_UPDATE", error=None, new_transactions=231),
        "tx-default-update": tx("DEFAULT_UPDATE", error=None, new_transactions=3),
        "tx-removed": tx("TRANSACTIONS_REMOVED", error=None,
                         removed_transactions=[fake_id("wh-tx-1"), fake_id("wh-tx-2")]),
        "unknown-transfer": {"webhook_type": "TRANSFER", "webhook_code": "TRANSFER_EVENTS_UPDATE",
                             "environment": "sandbox"},
        "unknown-item-code": item("SOMETHING_NEW", extra={"nested": [1, {"a": None}]}),
    }


def webhook_body_seeds():
    seeds = {}
    for name, value in webhook_bodies().items():
        seeds["compact-" + name] = compact(value)
    seeds["pretty-item-error"] = pretty(webhook_bodies()["item-error"])
    item = webhook_bodies()["item-login-repaired"]
    seeds.update({
        "empty": b"",
        "not-an-object": b"[1,2,3]",
        "null": b"null",
        "empty-object": b"{}",
        "type-only": b'{"webhook_type":"ITEM"}',
        "numeric-code": b'{"webhook_type":"ITEM","webhook_code":7}',
        "duplicate-code": b'{"webhook_type":"ITEM","webhook_code":"ERROR","webhook_code":"LOGIN_REPAIRED"}',
        "error-without-error": compact(dict(item, webhook_code="ERROR")),
        "missing-item-id": compact({k: v for k, v in item.items() if k != "item_id"}),
        "bad-date": compact(dict(item, webhook_code="PENDING_EXPIRATION", consent_expiration_time="yesterday")),
        "negative-count": compact({"webhook_type": "TRANSACTIONS", "webhook_code": "DEFAULT_UPDATE",
                                   "item_id": "x", "environment": "sandbox", "new_transactions": -1}),
        "float-count": compact({"webhook_type": "TRANSACTIONS", "webhook_code": "DEFAULT_UPDATE",
                                "item_id": "x", "environment": "sandbox", "new_transactions": 1.5}),
        "string-error": compact({"webhook_type": "TRANSACTIONS", "webhook_code": "INITIAL_UPDATE",
                                 "item_id": "x", "environment": "sandbox", "new_transactions": 0,
                                 "error": "boom"}),
        "error-with-token": compact(dict(webhook_bodies()["item-error"],
                                         error={"error_message": "token access-sandbox-" + fake_uuid("wh-tok")})),
        "truncated": compact(item)[:40],
        "deep-nesting": b'{"webhook_type":"X","webhook_code":"Y","a":' + nested(200) + b"}",
        "escaped-strings": b'{"webhook_type":"\u0049TEM","webhook_code":"LOGIN_\u0052EPAIRED","item_id":"\ud83d\ude00","environment":"sandbox"}',
        "invalid-utf8": b'{"webhook_type":"ITEM","webhook_code":"\xff"}',
    })
    return seeds


def webhook_jwt_seeds():
    bodies = webhook_body_seeds()
    body = bodies["compact-item-error"]
    sync = bodies["compact-tx-sync-updates-available"]
    claims = {"iat": FUZZ_NOW - 10, "request_body_sha256": hashlib.sha256(body).hexdigest()}
    header = {"alg": "ES256", "kid": FUZZ_KID, "typ": "JWT"}
    valid = plaid_jwt(body)
    signature = base64.urlsafe_b64decode(valid.split(b".")[2] + b"==")
    s = int.from_bytes(signature[32:], "big")
    malleated = jwt(header, claims, signature=signature[:32] + (P256_N - s).to_bytes(32, "big"))
    pretty_body = bodies["pretty-item-error"]
    join = lambda token, b=body: token + b"\n" + b
    return {
        "valid-item-error": join(valid),
        "valid-sync-updates": join(plaid_jwt(sync, label="sync"), sync),
        "valid-pretty-body": join(plaid_jwt(pretty_body, label="pretty"), pretty_body),
        "valid-unknown-webhook": join(plaid_jwt(bodies["compact-unknown-transfer"], label="unknown"),
                                      bodies["compact-unknown-transfer"]),
        "valid-oldest-iat": join(plaid_jwt(body, iat=FUZZ_NOW - 300, label="oldest")),
        "valid-malleated-signature": join(malleated),
        "valid-but-malformed-body": join(plaid_jwt(bodies["error-without-error"], label="bad-body"),
                                         bodies["error-without-error"]),
        "expired-key": join(plaid_jwt(body, kid="fuzz-key-expired", label="expired")),
        "unusable-key": join(plaid_jwt(body, kid="fuzz-key-rsa", label="rsa")),
        "unavailable-key": join(plaid_jwt(body, kid="fuzz-key-down", label="down")),
        "unknown-kid": join(plaid_jwt(body, kid="bfbd5111-8e33-4643-8ced-b2e642a72f3c", label="unknown")),
        "wrong-key": join(plaid_jwt(body, d=FUZZ_D + 1, label="wrong")),
        "stale-iat": join(plaid_jwt(body, iat=FUZZ_NOW - 301, label="stale")),
        "future-iat": join(plaid_jwt(body, iat=FUZZ_NOW + 61, label="future")),
        "body-changed": join(valid, body.replace(b"400", b"401")),
        "body-whitespace": join(valid, body + b"\n"),
        "claims-float-iat": join(jwt(header, dict(claims, iat=FUZZ_NOW - 10.5), label="float")),
        "claims-short-hash": join(jwt(header, dict(claims, request_body_sha256="abc"), label="short")),
        "claims-not-json": join(jwt(header, b"not json", label="notjson")),
        "alg-none": join(jwt(dict(header, alg="none"), claims, signature=b"")),
        "alg-none-signed": join(jwt(dict(header, alg="none"), claims, label="none")),
        "alg-hs256": join(jwt(dict(header, alg="HS256"), claims,
                              signature=hmac.new(b"\x04" + pseudo_random("x", 64), b"x", hashlib.sha256).digest())),
        "alg-rs256": join(jwt(dict(header, alg="RS256"), claims, label="rs")),
        "alg-lowercase": join(jwt(dict(header, alg="es256"), claims, label="lower")),
        "alg-missing": join(jwt({"kid": FUZZ_KID}, claims, label="noalg")),
        "kid-missing": join(jwt({"alg": "ES256"}, claims, label="nokid")),
        "kid-bad-chars": join(jwt(dict(header, kid="../\u0000"), claims, label="badkid")),
        "header-jku": join(jwt(dict(header, jku="https://attacker.example/jwks"), claims, label="jku")),
        "header-jwk": join(jwt(dict(header, jwk={"kty": "EC"}), claims, label="jwk")),
        "header-crit": join(jwt(dict(header, crit=["b64"], b64=False), claims, label="crit")),
        "header-duplicate-alg": join(jwt(b'{"alg":"ES256","alg":"none","kid":"fuzz-key-1"}', claims, label="dup")),
        "two-segments": join(valid.rsplit(b".", 1)[0]),
        "four-segments": join(valid + b".e30"),
        "bad-base64": join(b"!!!." + valid.split(b".", 1)[1]),
        "padded-base64": join(valid.split(b".")[0] + b"=." + valid.split(b".", 1)[1]),
        "non-json-header": join(b64url(b"hello") + b"." + valid.split(b".", 1)[1]),
        "short-signature": join(valid.rsplit(b".", 1)[0] + b".AAAA"),
        "huge-header": join(jwt(dict(header, pad="x" * 3000), claims, label="huge")),
        "header-only": valid,
        "empty": b"",
        "newline-only": b"\n",
    }


def main():
    write("envelope_bytes", bytes_seeds())
    write("envelope_text", text_seeds())
    write("round_trip", round_trip_seeds())
    write("redact_json", redact_json_seeds())
    write("redact_text", redact_text_seeds())
    write("webhook_jwt", webhook_jwt_seeds())
    write("webhook_body", webhook_body_seeds())


if __name__ == "__main__":
    main()
