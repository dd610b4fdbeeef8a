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


def main():
    write("envelope_bytes", bytes_seeds())
    write("envelope_text", text_seeds())
    write("round_trip", round_trip_seeds())


if __name__ == "__main__":
    main()
