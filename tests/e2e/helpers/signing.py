"""Signed commands and queries (docs/contract.md, "Signing"): the keys the
suite's gateways and workers trust, and a signer for what the suite itself
produces to ticket.commands / ticket.queries.

Keys are made once per test process, like the JWT secret:
- `gateway`: the gateways' signing key (admin+customer);
- `e2e`: the suite as "another service" (admin+customer), used by
  Kafka.produce_many for every command and query it sends unsigned;
- `billing`: a service key limited to customer actions.
"""

import base64
import hashlib
import hmac
import secrets
import struct

VERSION = b"ticket-sig-v1"
SIGNED_HEADERS = ("correlation-id", "reply-topic", "reply-partition", "deadline")
ABSENT = b"\xff\xff\xff\xff"

KEYS = {
    "gateway": (secrets.token_bytes(32), "admin+customer"),
    "e2e": (secrets.token_bytes(32), "admin+customer"),
    "billing": (secrets.token_bytes(32), "customer"),
}
DEFAULT_KEY_ID = "e2e"


def keys_spec(keys=None):
    """The COMMAND_KEYS value for `keys` (id -> (secret, roles))."""
    keys = KEYS if keys is None else keys
    return ",".join("%s:%s:%s" % (kid, base64.b64encode(secret).decode(), roles)
                    for kid, (secret, roles) in keys.items())


COMMAND_KEYS = keys_spec()


def _bytes(value):
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _item(value):
    value = _bytes(value)
    return ABSENT if value is None else struct.pack(">I", len(value)) + value


def canonical(key_id, headers, value):
    """The bytes a signature covers. headers: dict name -> str/bytes (last wins)."""
    out = _item(VERSION) + _item(key_id)
    for name in SIGNED_HEADERS:
        out += _item(headers.get(name))
    return out + _item(value)


def signature(secret, key_id, headers, value):
    return hmac.new(secret, canonical(key_id, headers, value), hashlib.sha256).hexdigest()


def _last(headers):
    out = {}
    for name, value in headers:
        out[name] = value
    return out


def sign(headers, value, key_id=DEFAULT_KEY_ID, secret=None):
    """headers: list of (name, value); returns a new list with key-id and
    signature appended, over `value` (bytes) and the signed headers."""
    secret = KEYS[key_id][0] if secret is None else secret
    headers = [(k, v) for k, v in headers if k not in ("key-id", "signature")]
    sig = signature(secret, key_id, _last(headers), value)
    return headers + [("key-id", key_id), ("signature", sig)]


def is_signed(headers):
    return any(k == "key-id" for k, _ in headers) or any(k == "signature" for k, _ in headers)
