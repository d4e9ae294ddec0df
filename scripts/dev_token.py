"""Prints an HS256 JWT for the dev stack (standard library only).

usage: dev_token.py SECRET_FILE ROLE SUB [TEAM]

Claims: sub, role, team (when given), iss and aud (from the environment's
JWT_ISSUER and JWT_AUDIENCE, when set: ./dev passes the dev stack's), iat,
exp = now + 24 h. The key is the
content of SECRET_FILE (the 64 hex characters, as bytes), which ./dev up also
passes to the gateway as JWT_SECRET.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def main(argv):
    if len(argv) not in (4, 5):
        sys.exit("usage: dev_token.py SECRET_FILE ROLE SUB [TEAM]")
    secret_file, role, sub = argv[1:4]
    team = argv[4] if len(argv) == 5 else None
    with open(secret_file, "rb") as f:
        key = f.read().strip()
    now = int(time.time())
    claims = {"sub": sub, "role": role}
    if team is not None:
        claims["team"] = team
    if os.environ.get("JWT_ISSUER"):
        claims["iss"] = os.environ["JWT_ISSUER"]
    if os.environ.get("JWT_AUDIENCE"):
        claims["aud"] = os.environ["JWT_AUDIENCE"]
    claims["iat"] = now
    claims["exp"] = now + 24 * 3600
    signing_input = b64url(compact({"alg": "HS256", "typ": "JWT"})) + "." + b64url(compact(claims))
    signature = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    print(signing_input + "." + b64url(signature))


if __name__ == "__main__":
    main(sys.argv)
