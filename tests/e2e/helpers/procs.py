"""Start, watch and stop ticket-gateway / ticket-worker subprocesses.

Every process is started with its stdout+stderr in a log file, tracked in a
module-level registry (so an interpreter exit never leaves one behind) and
stopped with SIGTERM, then SIGKILL after a grace period.

A factory's `close()` then checks what the processes left behind: a process
stopped with SIGTERM must have exited by itself with 0 (`expected_exit`), and
no log may hold an AddressSanitizer, LeakSanitizer or UBSan report. The ASan
pass of `./dev test` depends on this: the sanitizers report at exit, in the
log, and through the exit code (ASAN_OPTIONS exitcode=23).
"""

import atexit
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid

import requests

from . import signing
from .api import JWT_AUDIENCE, JWT_ISSUER

# Variables the service reads: never inherited from the developer's shell.
SERVICE_ENV_VARS = (
    "PORT", "BIND_ADDRESS", "KAFKA_BROKERS", "MONGODB_URI", "JWT_SECRET",
    "JWT_PUBLIC_KEY_FILE", "JWT_ALG", "REQUEST_TIMEOUT_MS", "GATEWAY_ID",
    "WORKER_THREADS", "WORKER_WRITE_LANES", "WORKER_BATCH_MAX", "WORKER_BULK_REPLIES", "WORKER_ID",
    "WORKER_RECENT_TICKETS",
    "LOG_LEVEL", "HTTP_THREADS", "MAX_BODY_KIB",
    "MAX_PENDING_REQUESTS", "RATE_LIMIT_PER_SECOND", "RATE_LIMIT_BURST", "ACCESS_LOG",
    "JWT_PREVIOUS_SECRET", "JWT_PREVIOUS_PUBLIC_KEY_FILE", "WORKER_HTTP_PORT", "KAFKA_GROUP_ID",
    "COMMAND_KEYS", "COMMAND_KEYS_FILE", "COMMAND_SIGNING_KEY_ID", "REPLY_TOPICS",
    "JWT_ISSUER", "JWT_AUDIENCE", "JWT_MAX_LIFETIME_S",
)
# Kafka security and secret files (test_sasl_ssl.py sets them per process).
SERVICE_ENV_VARS += (
    "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD",
    "KAFKA_SASL_PASSWORD_FILE", "KAFKA_SSL_CA_LOCATION", "JWT_SECRET_FILE", "JWT_PREVIOUS_SECRET_FILE",
    "MONGODB_URI_FILE",
)

START_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0

# First line of a sanitizer report in a log: ASan/LSan/UBSan "==PID==ERROR:",
# a UBSan "file.c:12:5: runtime error:" diagnostic, or a report's SUMMARY.
SANITIZER_REPORT_RE = re.compile(
    r"^(==\d+==\s*ERROR: \w*Sanitizer\b.*"
    r"|.*?:\d+(:\d+)?: runtime error: .*"
    r"|SUMMARY: \w*Sanitizer\b.*)$", re.M)
REPORT_MAX_LINES = 60

_registry = []
_registry_lock = threading.Lock()


def _kill_leftovers():
    with _registry_lock:
        procs = list(_registry)
    for proc in procs:
        if proc.alive:
            try:
                proc.popen.kill()
            except OSError:
                pass


atexit.register(_kill_leftovers)


def live_processes(kind=None):
    """Processes started by this suite that are still running."""
    with _registry_lock:
        procs = list(_registry)
    return [p for p in procs if p.alive and (kind is None or p.kind == kind)]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(overrides):
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_ENV_VARS}
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


class Proc:
    """One service process with its log file."""

    def __init__(self, kind, name, argv, env, log_path):
        self.kind = kind
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = str(log_path)
        self.returncode = None
        # Exit codes accepted after a SIGTERM from stop() (the documented one).
        self.expected_exit = (0,)
        # Set by stop() with SIGTERM/SIGINT: (signal, exit code, needed SIGKILL).
        self.graceful_stops = []
        self._log_file = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            self.argv, env=self.env, stdin=subprocess.DEVNULL,
            stdout=self._log_file, stderr=self._log_file,
            start_new_session=True)
        with _registry_lock:
            _registry.append(self)

    def __repr__(self):
        return "<%s %s pid=%s>" % (self.kind, self.name, self.popen.pid)

    @property
    def pid(self):
        return self.popen.pid

    @property
    def alive(self):
        return self.popen.poll() is None

    # -- log -------------------------------------------------------------
    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_text(self, since=0):
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    def log_records(self, since=0):
        """Parsed JSON log lines (non-JSON lines are skipped)."""
        records = []
        for line in self.log_text(since).splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                records.append(obj)
        return records

    def count_msg(self, msg, since=0):
        return sum(1 for r in self.log_records(since) if r.get("msg") == msg)

    def tail(self, lines=40):
        try:
            text = self.log_text()
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])

    def describe(self, lines=40):
        state = "running" if self.alive else "exited with %s" % self.popen.returncode
        return "%r (%s), log %s, last lines:\n%s" % (
            self, state, self.log_path, self.tail(lines))

    def wait_for_msg(self, msg, since=0, timeout=START_TIMEOUT_S, count=1):
        """Wait until the log has `count` JSON lines with "msg": msg."""
        deadline = time.monotonic() + timeout
        while True:
            if self.count_msg(msg, since) >= count:
                return
            if not self.alive:
                raise AssertionError("process died while waiting for log msg %r: %s"
                                     % (msg, self.describe()))
            if time.monotonic() > deadline:
                raise AssertionError("log msg %r not seen within %.0f s: %s"
                                     % (msg, timeout, self.describe()))
            time.sleep(0.05)

    # -- lifecycle -------------------------------------------------------
    def send_signal(self, sig):
        if self.alive:
            self.popen.send_signal(sig)

    def wait_exit(self, timeout):
        try:
            self.returncode = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._close_log()
        return self.returncode

    def stop(self, grace=None, sig=signal.SIGTERM):
        """SIGTERM (or `sig`), SIGKILL after `grace` s (STOP_GRACE_S); returns
        the exit code. A graceful stop is remembered and checked by
        ProcFactory.close()."""
        grace = STOP_GRACE_S if grace is None else grace
        if self.alive:
            try:
                self.popen.send_signal(signal.SIGCONT)
            except OSError:
                pass
            self.popen.send_signal(sig)
            needed_kill = False
            if self.wait_exit(grace) is None:
                needed_kill = True
                self.popen.kill()
                self.wait_exit(grace)
            if sig in (signal.SIGTERM, signal.SIGINT):
                self.graceful_stops.append((sig, self.popen.wait(), needed_kill, grace))
        self.returncode = self.popen.wait()
        self._close_log()
        return self.returncode

    # -- what the process left behind -------------------------------------
    def sanitizer_report(self):
        """The first sanitizer report in the log (up to REPORT_MAX_LINES
        lines from its first line), or None."""
        try:
            text = self.log_text()
        except OSError:
            return None
        match = SANITIZER_REPORT_RE.search(text)
        if match is None:
            return None
        # the report's own "==PID==" header line may come a little before a
        # UBSan diagnostic; start from the line of the match
        lines = text[match.start():].splitlines()
        report = lines[:REPORT_MAX_LINES]
        if len(lines) > REPORT_MAX_LINES:
            report.append("... (%d more lines in %s)" % (len(lines) - REPORT_MAX_LINES,
                                                          self.log_path))
        return "\n".join(report)

    def exit_problems(self):
        """What is wrong with how this process ended, as sentences naming it:
        a graceful stop that needed SIGKILL or ended with an unexpected exit
        code, and any sanitizer report in its log."""
        problems = []
        for sig, rc, needed_kill, grace in self.graceful_stops:
            name = signal.Signals(sig).name
            if needed_kill:
                problems.append("%r did not exit within %.0f s of %s (killed with SIGKILL, "
                                "exit %s)" % (self, grace, name, rc))
            elif rc not in self.expected_exit:
                problems.append("%r exited with %s after %s (expected %s)" % (
                    self, rc, name, " or ".join(str(c) for c in self.expected_exit)))
        report = self.sanitizer_report()
        if report is not None:
            problems.append("%r: sanitizer report in its log %s:\n%s" % (
                self, self.log_path, report))
        return problems

    def kill(self):
        if self.alive:
            self.popen.kill()
        self.returncode = self.popen.wait()
        self._close_log()
        return self.returncode

    def _close_log(self):
        if not self._log_file.closed:
            self._log_file.close()


class Gateway(Proc):
    def __init__(self, *args, port, gateway_id, **kwargs):
        self.port = port
        self.gateway_id = gateway_id
        super().__init__(*args, **kwargs)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def base(self):
        return self.url + "/api/ticket"

    def wait_ready(self, timeout=START_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if not self.alive:
                raise AssertionError("gateway exited before /readyz was 200: %s"
                                     % self.describe())
            try:
                resp = requests.get(self.url + "/readyz", timeout=2)
                last = resp.status_code
                if resp.status_code == 200:
                    return
            except requests.RequestException as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise AssertionError("gateway /readyz not 200 within %.0f s (last: %s): %s"
                                     % (timeout, last, self.describe()))
            time.sleep(0.1)


class Worker(Proc):
    def __init__(self, *args, worker_id, **kwargs):
        self.worker_id = worker_id
        super().__init__(*args, **kwargs)

    def wait_assigned(self, since=0, timeout=START_TIMEOUT_S):
        self.wait_for_msg("partitions assigned", since=since, timeout=timeout)


class ProcFactory:
    """Starts processes for one scope and stops them all at `close()`."""

    def __init__(self, config, log_dir, jwt_secret, label):
        self.config = config
        self.log_dir = str(log_dir)
        self.jwt_secret = jwt_secret
        self.label = label
        self.procs = []

    def _log_path(self, name):
        return os.path.join(self.log_dir, "%s-%s.log" % (name, uuid.uuid4().hex[:6]))

    def gateway(self, gateway_id=0, request_timeout_ms=5000, env=None, wait=True,
                port=None):
        """Start a ticket-gateway; `env` entries override (None removes)."""
        port = port or free_port()
        overrides = {
            "PORT": port,
            "BIND_ADDRESS": "127.0.0.1",
            "KAFKA_BROKERS": self.config.kafka,
            "JWT_SECRET": self.jwt_secret,
            "REQUEST_TIMEOUT_MS": request_timeout_ms,
            "GATEWAY_ID": gateway_id,
            "LOG_LEVEL": "debug",
            "COMMAND_KEYS": signing.COMMAND_KEYS,
            "COMMAND_SIGNING_KEY_ID": "gateway",
            "JWT_ISSUER": JWT_ISSUER,
            "JWT_AUDIENCE": JWT_AUDIENCE,
        }
        overrides.update(env or {})
        name = "gateway%s-%s" % (gateway_id, self.label)
        proc = Gateway("gateway", name, [self.config.gateway_bin], service_env(overrides),
                       self._log_path(name), port=port, gateway_id=gateway_id)
        self.procs.append(proc)
        if wait:
            proc.wait_ready()
        return proc

    def worker(self, worker_id=None, env=None, wait=True, threads=2):
        worker_id = worker_id or "e2e-%s-%s" % (self.label, uuid.uuid4().hex[:8])
        overrides = {
            "KAFKA_BROKERS": self.config.kafka,
            "MONGODB_URI": self.config.mongodb_uri,
            "WORKER_THREADS": threads,
            "WORKER_ID": worker_id,
            "LOG_LEVEL": "debug",
            "COMMAND_KEYS": signing.COMMAND_KEYS,
        }
        overrides.update(env or {})
        name = "worker-%s" % worker_id
        proc = Worker("worker", name, [self.config.worker_bin], service_env(overrides),
                      self._log_path(name), worker_id=worker_id)
        self.procs.append(proc)
        if wait:
            proc.wait_assigned()
        return proc

    def run_to_exit(self, binary, env, timeout=15):
        """Run a binary that is expected to exit by itself; returns (rc, output)."""
        name = "oneshot-%s" % os.path.basename(binary)
        proc = Proc("oneshot", name, [binary], service_env(env), self._log_path(name))
        self.procs.append(proc)
        rc = proc.wait_exit(timeout)
        if rc is None:
            proc.kill()
            raise AssertionError("%s did not exit within %d s: %s"
                                 % (binary, timeout, proc.describe()))
        return rc, proc.log_text()

    def close(self, check=True):
        """Stop every process (SIGTERM); with `check`, fail naming each
        process that did not end cleanly (exit_problems) and showing its
        sanitizer report or last log lines."""
        for proc in reversed(self.procs):
            proc.stop()
        if not check:
            return
        problems = []
        for proc in self.procs:
            found = proc.exit_problems()
            if found and proc.sanitizer_report() is None:
                found[-1] += "\nlast log lines:\n" + proc.tail(25)
            problems.extend(found)
        assert not problems, "%d process problem(s) at shutdown (%s):\n\n%s" % (
            len(problems), self.label, "\n\n".join(problems))
