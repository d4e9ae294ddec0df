"""Fixtures of the fault suite (`./dev test --faults`).

It runs against the private stack of `./dev test`, like the end-to-end
suite, and reuses its helpers (tests/e2e/helpers). Besides the variables of
the end-to-end suite, the runner exports:
  TICKET_TEST_STACK_RUN  the run dir of that stack (scripts/stack.sh layout)
  TICKET_TEST_STACKCTL   scripts/stackctl.sh, to stop/start Kafka or FerretDB
                         of that stack on the same ports
Every test gets its own gateway and two workers (stopped after it, also on
failure) and leaves Kafka and FerretDB running.
"""

import os
import re
import secrets
import sys
import time
from collections import namedtuple

import pytest
from confluent_kafka import Producer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
sys.path.insert(0, HERE)

from helpers import procs as procs_mod  # noqa: E402
from helpers.api import Tokens  # noqa: E402
from helpers.kafka import Kafka, probe_all_partitions  # noqa: E402

import faultlib  # noqa: E402

REQUIRED_ENV = ("TICKET_TEST_KAFKA", "TICKET_TEST_MONGODB_URI", "TICKET_GATEWAY_BIN",
                "TICKET_WORKER_BIN", "TICKET_TEST_STACK_RUN", "TICKET_TEST_STACKCTL")

Config = namedtuple("Config", "kafka mongodb_uri gateway_bin worker_bin stack_run stackctl")

SUMMARY_PATH = os.path.join(os.path.dirname(os.path.dirname(HERE)), ".cache",
                            "faults-latest.md")
REQUEST_TIMEOUT_MS = 5000
WORKER_IDS = ("faults-a", "faults-b")   # stable: a restart replaces the static member
_session_start = time.monotonic()


@pytest.fixture(scope="session")
def config():
    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        pytest.exit("the fault suite needs %s (run it through ./dev test --faults)"
                    % ", ".join(missing), returncode=3)
    return Config(*(os.environ[name] for name in REQUIRED_ENV))


@pytest.fixture(scope="session")
def jwt_secret():
    return secrets.token_hex(32)


@pytest.fixture(scope="session")
def tokens(jwt_secret):
    return Tokens(jwt_secret)


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("fault-logs")
    print("\nservice logs in %s" % path)
    return path


@pytest.fixture(scope="session")
def stackctl(config):
    ctl = faultlib.StackCtl(config.stackctl, config.stack_run)
    yield ctl
    ctl.ensure_up()


class QuietKafka(Kafka):
    """The end-to-end suite's Kafka client whose producer does not print a
    line per failed reconnect while the broker is deliberately away."""

    def __init__(self, bootstrap):
        super().__init__(bootstrap)
        self._producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0,
                                   "socket.nagle.disable": True, "acks": "all",
                                   "log_level": 2})


@pytest.fixture(scope="session")
def kafka(config):
    client = QuietKafka(config.kafka)
    yield client
    client.close()


@pytest.fixture(scope="session")
def tickets_coll(config):
    from pymongo import MongoClient
    client = MongoClient(config.mongodb_uri, serverSelectionTimeoutMS=30000, tz_aware=False)
    client.admin.command("ping")
    yield client.get_default_database()["tickets"]
    client.close()


class FaultStack:
    """A gateway (GATEWAY_ID 0) and two workers with a readiness port each."""

    def __init__(self, factory, kafka):
        self.factory = factory
        self.kafka = kafka
        self.worker_ports = {}
        self.workers = [self.start_worker(wid, wait=False) for wid in WORKER_IDS]
        self.gateway = factory.gateway(
            gateway_id=0, request_timeout_ms=REQUEST_TIMEOUT_MS,
            env={"LOG_LEVEL": "info", "RATE_LIMIT_PER_SECOND": 0})
        for worker in self.workers:
            worker.wait_assigned()
        probe_all_partitions(kafka, timeout=60)

    def start_worker(self, worker_id, wait=True):
        port = self.worker_ports.get(worker_id) or procs_mod.free_port()
        self.worker_ports[worker_id] = port
        return self.factory.worker(worker_id=worker_id, wait=wait, threads=2,
                                   env={"LOG_LEVEL": "info", "WORKER_HTTP_PORT": port,
                                        "BIND_ADDRESS": "127.0.0.1"})

    def restart_worker(self, index, wait=True):
        old = self.workers[index]
        if old.alive:
            old.stop()
        self.workers[index] = self.start_worker(old.worker_id, wait=wait)
        return self.workers[index]

    def ready_url(self, index):
        return "http://127.0.0.1:%d/readyz" % self.worker_ports[self.workers[index].worker_id]

    def describe(self):
        return "\n\n".join(p.describe(20) for p in [self.gateway] + self.workers)


@pytest.fixture
def fault_stack(config, jwt_secret, log_dir, kafka, stackctl, tickets_coll, request):
    stackctl.ensure_up()
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:48]
    factory = procs_mod.ProcFactory(config, log_dir, jwt_secret, label)
    try:
        yield FaultStack(factory, kafka)
    finally:
        try:
            factory.close()
        finally:
            stackctl.ensure_up()
            # The database is this suite's own: every scenario starts with an
            # empty collection (list queries on FerretDB slow down with its size).
            tickets_coll.delete_many({})


def pytest_sessionfinish(session, exitstatus):
    outcome = "passed" if exitstatus == 0 else "FAILED (exit status %s)" % exitstatus
    try:
        faultlib.write_summary(SUMMARY_PATH, time.monotonic() - _session_start, outcome)
    except OSError:
        pass


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not faultlib.SUMMARY:
        return
    terminalreporter.section("fault summary")
    text = faultlib.summary_markdown(time.monotonic() - _session_start,
                                     "passed" if exitstatus == 0 else "FAILED")
    for line in text.splitlines():
        terminalreporter.write_line(line)
    terminalreporter.write_line("(also in %s)" % SUMMARY_PATH)
