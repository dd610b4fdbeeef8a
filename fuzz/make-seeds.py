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


def main():
    write("envelope_bytes", bytes_seeds())
    write("envelope_text", text_seeds())
    write("round_trip", round_trip_seeds())
    write("redact_json", redact_json_seeds())
    write("redact_text", redact_text_seeds())


if __name__ == "__main__":
    main()
