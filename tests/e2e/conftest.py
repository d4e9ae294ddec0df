"""Fixtures of the end-to-end suite (real Kafka, real MongoDB-compatible DB,
the real ticket-gateway and ticket-worker binaries).

The runner (`./dev test`) exports:
  TICKET_TEST_KAFKA        bootstrap servers of a broker with the topics created
  TICKET_TEST_MONGODB_URI  mongodb://127.0.0.1:<port>/ticketing_test
  TICKET_GATEWAY_BIN       absolute path of ticket-gateway
  TICKET_WORKER_BIN        absolute path of ticket-worker
Without them the suite fails loudly; it never skips.
"""

import os
import secrets
import sys
from collections import namedtuple

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import procs as procs_mod  # noqa: E402
from helpers.api import Api, Tokens, new_team  # noqa: E402
from helpers.kafka import Kafka, probe_all_partitions  # noqa: E402

REQUIRED_ENV = ("TICKET_TEST_KAFKA", "TICKET_TEST_MONGODB_URI", "TICKET_GATEWAY_BIN",
                "TICKET_WORKER_BIN")

Config = namedtuple("Config", "kafka mongodb_uri gateway_bin worker_bin")


def _load_config():
    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        pytest.exit("end-to-end suite needs %s (run it through ./dev test)" % ", ".join(missing),
                    returncode=3)
    config = Config(os.environ["TICKET_TEST_KAFKA"], os.environ["TICKET_TEST_MONGODB_URI"],
                    os.environ["TICKET_GATEWAY_BIN"], os.environ["TICKET_WORKER_BIN"])
    for binary in (config.gateway_bin, config.worker_bin):
        if not (os.path.isabs(binary) and os.path.isfile(binary) and os.access(binary, os.X_OK)):
            pytest.exit("not an executable absolute path: %s" % binary, returncode=3)
    return config


@pytest.fixture(scope="session")
def config():
    return _load_config()


@pytest.fixture(scope="session")
def jwt_secret():
    return secrets.token_hex(32)  # 64 hex characters


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("service-logs")
    print("\nservice logs in %s" % path)
    return path


@pytest.fixture(scope="session")
def kafka(config):
    client = Kafka(config.kafka)
    yield client
    client.close()


@pytest.fixture(scope="session")
def mongo_db(config):
    from pymongo import MongoClient
    client = MongoClient(config.mongodb_uri, serverSelectionTimeoutMS=10000, tz_aware=False)
    db = client.get_default_database()
    client.admin.command("ping")
    yield db
    client.close()


@pytest.fixture(scope="session")
def tickets_coll(mongo_db):
    return mongo_db["tickets"]


class DefaultStack:
    """The session's gateway (GATEWAY_ID 0) and two workers."""

    def __init__(self, factory, kafka):
        self.factory = factory
        self.kafka = kafka
        self.workers = [factory.worker(wait=False), factory.worker(wait=False)]
        self.gateway = factory.gateway(gateway_id=0)
        for worker in self.workers:
            worker.wait_assigned()
        probe_all_partitions(kafka, timeout=60)

    def restart_worker(self, index, wait=True):
        """Start worker `index` again with its WORKER_ID (a static member
        rejoining takes its old partitions back without a rebalance)."""
        old = self.workers[index]
        if old.alive:
            old.stop()
        self.workers[index] = self.factory.worker(worker_id=old.worker_id, wait=wait)
        return self.workers[index]

    def heal(self, timeout=90):
        """Make sure both workers run and every partition is served."""
        for index, worker in enumerate(self.workers):
            if not worker.alive:
                self.restart_worker(index)
        return probe_all_partitions(self.kafka, timeout=timeout)


@pytest.fixture(scope="session")
def stack(config, jwt_secret, log_dir, kafka):
    factory = procs_mod.ProcFactory(config, log_dir, jwt_secret, "session")
    try:
        yield DefaultStack(factory, kafka)
    finally:
        factory.close()


@pytest.fixture
def procs(config, jwt_secret, log_dir):
    """Function-scoped process factory: everything it starts is stopped after."""
    factory = procs_mod.ProcFactory(config, log_dir, jwt_secret, "fn")
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def tokens(jwt_secret):
    return Tokens(jwt_secret)


@pytest.fixture(scope="session")
def api(stack):
    return Api(stack.gateway.base)


@pytest.fixture
def team():
    return new_team()


@pytest.fixture
def customer(tokens):
    """A customer of a fresh team (nobody else sees its tickets)."""
    return tokens.customer()


@pytest.fixture
def admin(tokens):
    return tokens.admin()


@pytest.fixture
def taps(kafka):
    """Factory of Kafka taps (read from the end) closed after the test."""
    opened = []

    def open_tap(topic, partitions=None):
        tap = kafka.tap(topic, partitions)
        opened.append(tap)
        return tap

    yield open_tap
    for tap in opened:
        tap.close()

