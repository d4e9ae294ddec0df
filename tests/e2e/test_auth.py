"""Item 2: authentication and roles."""

import time

import jwt
import pytest
from bson import ObjectId
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from helpers.api import (JWT_AUDIENCE, JWT_ISSUER, MSG_FETCHED, Api, Tokens, expect_error, expect_ok, new_team,
                         raw_hs256, unsigned_token)

MISSING = "Authorization token is missing"
INVALID = "Invalid token"
EXPIRED = "Token has expired"
CUSTOMERS_ONLY = "Access denied: customers only"
ADMINS_ONLY = "Access denied: admins only"

ROUTES = [
    ("POST", "/create-ticket", None),
    ("GET", "/get-tickets", None),
    ("POST", "/create-reply", "6720b1c8f1c2b3a5e4d90130"),
    ("GET", "/admin-get-tickets", None),
    ("POST", "/admin-create-reply", "6720b1c8f1c2b3a5e4d90130"),
]


def call(api, method, path, ticket_id, token=None, headers=None):
    body = {"description": "x"} if "reply" in path else {
        "category": "Support", "subject": "s", "description": "d"}
    params = {"id": ticket_id} if ticket_id else None
    if method == "GET":
        return api.request(method, path, token, params=params, headers=headers)
    return api.request(method, path, token, body, params=params, headers=headers)


def claims(**overrides):
    base = {"sub": str(ObjectId()), "role": "customer", "team": new_team(),
            "iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "exp": int(time.time()) + 600}
    for key, value in overrides.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


@pytest.mark.parametrize("method,path,ticket_id", ROUTES, ids=[r[1] for r in ROUTES])
def test_missing_authorization_header_is_401_on_every_route(api, method, path, ticket_id):
    expect_error(call(api, method, path, ticket_id), 401, MISSING)


def test_non_bearer_authorization_is_401_missing(api, customer):
    resp = api.request("GET", "/get-tickets", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    expect_error(resp, 401, MISSING)


def _bad_tokens(secret):
    hs = lambda c, key=secret: jwt.encode(c, key, algorithm="HS256")  # noqa: E731
    return {
        "malformed": "not-a-jwt",
        "three_garbage_segments": "abc.def.ghi",
        "bad_signature": tampered(hs(claims())),
        "wrong_secret": hs(claims(), "x" * 64),
        "alg_none": unsigned_token(claims(), "none"),
        "alg_None_capitalised": unsigned_token(claims(), "None"),
        "alg_hs384_with_right_secret": jwt.encode(claims(), secret, algorithm="HS384"),
        "alg_hs512_with_right_secret": jwt.encode(claims(), secret, algorithm="HS512"),
        "missing_exp": hs(claims(exp=None)),
        "exp_not_a_number": hs(claims(exp="tomorrow")),
        "missing_sub": hs(claims(sub=None)),
        "empty_sub": hs(claims(sub="")),
        "missing_role": hs(claims(role=None)),
        "unknown_role": hs(claims(role="superuser")),
        "customer_without_team": hs(claims(team=None)),
        "customer_with_empty_team": hs(claims(team="")),
        "payload_not_json": raw_hs_payload(b"not json", secret),
    }


def tampered(token):
    """The token's signature on a different payload (another sub)."""
    import base64
    import json
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["sub"] = str(ObjectId())
    new_payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return header + "." + new_payload + "." + signature


def raw_hs_payload(payload, secret):
    import base64
    import hashlib
    import hmac
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    signing_input = enc(b'{"alg":"HS256","typ":"JWT"}') + "." + enc(payload)
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + enc(sig)


BAD_TOKEN_CASES = sorted(_bad_tokens("0" * 64).keys())


@pytest.mark.parametrize("case", BAD_TOKEN_CASES)
def test_bad_token_is_401_invalid(api, jwt_secret, case):
    token = _bad_tokens(jwt_secret)[case]
    expect_error(api.request("GET", "/get-tickets", token), 401, INVALID)


def test_expired_token_is_401_expired(api, tokens):
    token = tokens.sign(claims(exp=int(time.time()) - 120))
    expect_error(api.request("GET", "/get-tickets", token), 401, EXPIRED)
    admin_token = tokens.sign(claims(role="admin", exp=int(time.time()) - 120))
    expect_error(api.request("GET", "/admin-get-tickets", admin_token), 401, EXPIRED)


def test_valid_token_with_extra_claims_is_accepted(api, tokens):
    token = tokens.sign(claims(iat=int(time.time()), name="Jane"))
    expect_ok(api.request("GET", "/get-tickets", token), 200, MSG_FETCHED)


def test_admin_token_without_team_is_accepted(api, tokens):
    token = tokens.sign(claims(role="admin", team=None))
    expect_ok(api.request("GET", "/admin-get-tickets", token), 200, MSG_FETCHED)


@pytest.mark.parametrize("method,path,ticket_id", ROUTES[3:], ids=[r[1] for r in ROUTES[3:]])
def test_customer_on_admin_route_is_403(api, customer, method, path, ticket_id):
    expect_error(call(api, method, path, ticket_id, customer.token), 403, ADMINS_ONLY)


@pytest.mark.parametrize("method,path,ticket_id", ROUTES[:3], ids=[r[1] for r in ROUTES[:3]])
def test_admin_on_customer_route_is_403(api, admin, method, path, ticket_id):
    expect_error(call(api, method, path, ticket_id, admin.token), 403, CUSTOMERS_ONLY)


# --- key configuration at start ---------------------------------------------

def _gateway_env(config, **extra):
    env = {"PORT": "0", "BIND_ADDRESS": "127.0.0.1", "KAFKA_BROKERS": config.kafka,
           "GATEWAY_ID": "1", "JWT_SECRET": None, "JWT_PUBLIC_KEY_FILE": None}
    env.update(extra)
    from helpers.procs import free_port
    env["PORT"] = str(free_port())
    return env


def test_gateway_without_key_refuses_to_start(procs, config):
    rc, output = procs.run_to_exit(config.gateway_bin, _gateway_env(config))
    assert rc != 0, output
    assert "JWT_SECRET" in output, "stderr does not name the missing setting:\n" + output


def test_gateway_with_short_secret_refuses_to_start(procs, config):
    rc, output = procs.run_to_exit(config.gateway_bin,
                                   _gateway_env(config, JWT_SECRET="s" * 31))
    assert rc != 0, output
    assert "JWT_SECRET" in output and "32" in output, \
        "stderr does not explain the secret is too short:\n" + output


def test_gateway_with_unreadable_key_file_refuses_to_start(procs, config, tmp_path):
    missing = str(tmp_path / "no-such-key.pem")
    rc, output = procs.run_to_exit(config.gateway_bin,
                                   _gateway_env(config, JWT_PUBLIC_KEY_FILE=missing))
    assert rc != 0, output
    assert "JWT_PUBLIC_KEY_FILE" in output or "no-such-key.pem" in output, output


def _pem_public(private_key):
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _pem_private(private_key):
    return private_key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


def test_rs256_gateway_accepts_rs256_and_refuses_algorithm_confusion(procs, tmp_path, jwt_secret):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = _pem_public(key)
    key_file = tmp_path / "jwt-public.pem"
    key_file.write_bytes(public_pem)
    gateway = procs.gateway(gateway_id=1, env={"JWT_SECRET": None,
                                                "JWT_PUBLIC_KEY_FILE": str(key_file)})
    api = Api(gateway.base)
    private_pem = _pem_private(key)
    good = claims()
    token = jwt.encode(good, private_pem, algorithm="RS256")
    assert expect_ok(api.request("GET", "/get-tickets", token), 200, MSG_FETCHED) == []
    admin_token = jwt.encode(claims(role="admin"), private_pem, algorithm="RS256")
    expect_ok(api.request("GET", "/admin-get-tickets", admin_token), 200, MSG_FETCHED)

    # HS256 "signed" with the public key PEM as the HMAC secret
    confused = raw_hs256(good, public_pem)
    expect_error(api.request("GET", "/get-tickets", confused), 401, INVALID)
    # HS256 with the session's secret (not configured on this gateway)
    expect_error(api.request("GET", "/get-tickets", Tokens(jwt_secret).sign(good)), 401, INVALID)
    # RS256 signed by another key
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    expect_error(api.request("GET", "/get-tickets",
                             jwt.encode(good, _pem_private(other), algorithm="RS256")),
                 401, INVALID)
    # RS512 with the right key: algorithm is pinned
    expect_error(api.request("GET", "/get-tickets",
                             jwt.encode(good, private_pem, algorithm="RS512")), 401, INVALID)
    expect_error(api.request("GET", "/get-tickets", unsigned_token(good)), 401, INVALID)
    expired = jwt.encode(claims(exp=int(time.time()) - 60), private_pem, algorithm="RS256")
    expect_error(api.request("GET", "/get-tickets", expired), 401, EXPIRED)


def test_es256_gateway_accepts_es256_only(procs, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "jwt-ec-public.pem"
    key_file.write_bytes(_pem_public(key))
    gateway = procs.gateway(gateway_id=1, env={"JWT_SECRET": None, "JWT_ALG": "ES256",
                                                "JWT_PUBLIC_KEY_FILE": str(key_file)})
    api = Api(gateway.base)
    good = claims()
    token = jwt.encode(good, _pem_private(key), algorithm="ES256")
    expect_ok(api.request("GET", "/get-tickets", token), 200, MSG_FETCHED)
    expect_error(api.request("GET", "/get-tickets", raw_hs256(good, _pem_public(key))),
                 401, INVALID)
    other = ec.generate_private_key(ec.SECP256R1())
    expect_error(api.request("GET", "/get-tickets",
                             jwt.encode(good, _pem_private(other), algorithm="ES256")),
                 401, INVALID)
