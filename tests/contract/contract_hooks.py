"""Schemathesis hooks of the contract test (SCHEMATHESIS_HOOKS=contract_hooks,
with tests/contract on PYTHONPATH).

Two inputs are valid by their schema yet cannot be valid by construction,
because they are bound to state the generator cannot know. A request
generated as valid ("positive") must not carry them, or the tester would
count the service's documented refusal as a rejected valid request:

- `cursor`: opaque, bound to its query, team and role by a check value
  (docs/contract.md, Lists); a made-up one is 400 `Invalid cursor`.
- `Idempotency-Key`: the same key with another body is 422 by design; every
  valid request gets a key of its own (the repeat rules are tested in
  tests/e2e/test_idempotency.py).
- `If-Match`: an ETag other than the ticket's current one is 412 by design;
  a valid request sends `*`, which matches any version (stale and concurrent
  If-Match are tested in tests/e2e/test_lifecycle.py).

Requests generated as invalid ("negative") keep whatever was generated."""

import uuid

import schemathesis
from schemathesis import GenerationMode


@schemathesis.hook
def before_call(context, case, kwargs):
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return
    if case.query and "cursor" in case.query:
        del case.query["cursor"]
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    if case.headers and "If-Match" in case.headers:
        case.headers["If-Match"] = "*"
