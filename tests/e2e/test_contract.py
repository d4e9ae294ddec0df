"""The external contract test: Schemathesis, a property-based tester, reads
the OpenAPI document the gateway serves (schemas/openapi.json) and sends
requests generated from it to the real stack (gateway, Kafka, workers,
FerretDB). Every answer must be documented: no 5xx, no status the
operation does not list, no body or header that breaks its schema.

CTest runs this file as its own test, `contract` (tests/CMakeLists.txt),
bounded by a time budget (and 100 examples per operation and round):
TICKET_CONTRACT_SECONDS (default 100; 45 with
the sanitized binaries, which run the whole suite a second time)."""

import os
import subprocess
import sys

from helpers.api import SEED_CREATE_REQUEST, expect_ok, MSG_CREATED

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.normpath(os.path.join(HERE, "..", "contract", "schemathesis.toml"))


def _budget_seconds():
    default = 45 if os.environ.get("TICKET_TEST_SANITIZED") == "1" else 100
    return int(os.environ.get("TICKET_CONTRACT_SECONDS", default))


def test_the_api_keeps_its_openapi_contract(stack, procs, tokens, api, tmp_path):
    # A gateway of its own without the rate limit: generated requests should
    # reach the workers, not mostly get 429 (which is documented, and dull).
    gateway = procs.gateway(gateway_id=1, env={"RATE_LIMIT_PER_SECOND": "1000000",
                                               "RATE_LIMIT_BURST": "1000000"})
    customer = tokens.customer()
    admin = tokens.admin()
    ticket, lifecycle_ticket = (expect_ok(api.create_ticket(customer, dict(SEED_CREATE_REQUEST)), 201,
                                          MSG_CREATED) for _ in range(2))
    budget = _budget_seconds()
    env = dict(os.environ,
               TICKET_CONTRACT_CUSTOMER_TOKEN=customer.token,
               TICKET_CONTRACT_ADMIN_TOKEN=admin.token,
               TICKET_CONTRACT_TICKET_ID=ticket["_id"],
               TICKET_CONTRACT_LIFECYCLE_TICKET_ID=lifecycle_ticket["_id"],
               SCHEMATHESIS_HOOKS="contract_hooks",
               PYTHONPATH=os.path.dirname(CONFIG))
    command = [sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", CONFIG,
               "run", gateway.base + "/openapi.json",
               "--max-time", str(budget), "--max-examples", "100", "--workers", "1", "--seed", "12",
               "--request-timeout", "10", "--generation-database", "none",
               "--output-truncate", "true",
               "--report", "junit", "--report-dir", str(tmp_path)]
    # In tmp_path: Schemathesis keeps a cache in .schemathesis/ of its working directory.
    # One worker: Python 3.11's parser is not thread-safe (a second worker
    # made Schemathesis itself fail with "AST constructor recursion depth mismatch").
    result = subprocess.run(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=budget + 240)
    log = tmp_path / "schemathesis.log"
    log.write_text(result.stdout)
    summary = result.stdout[result.stdout.rfind("=== FAILURES ==="):] if "=== FAILURES ===" in result.stdout \
        else result.stdout[-20000:]
    assert result.returncode == 0, "Schemathesis found contract violations (whole output in %s):\n%s" \
        % (log, summary[:20000])
    print(result.stdout[result.stdout.rfind("=== SUMMARY ==="):])
