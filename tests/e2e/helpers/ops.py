"""Helpers for the operations tests: raw HTTP over a socket (for bytes that
`requests` refuses to send), W3C traceparent, a worker's health port and the
partitions it holds."""

import os
import re
import secrets
import signal
import socket
import threading
import time
import uuid

import requests

from .kafka import probe_all_partitions
from .procs import free_port
from .wait import wait_until

TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


# --- raw HTTP -------------------------------------------------------------------

class RawResponse:
    def __init__(self, raw):
        self.raw = raw
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status_line = lines[0] if lines else ""
        parts = status_line.split(" ", 2)
        self.status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
        self.headers = {}
        for line in lines[1:]:
            name, _, val = line.partition(":")
            self.headers[name.strip().lower()] = val.strip()

    def json(self):
        import json
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<raw %s %r>" % (self.status, self.raw[:400])


def raw_request(port, data, timeout=10.0):
    """Send `data` (bytes) as is to 127.0.0.1:port and read until the server
    closes (send `Connection: close`). Returns a RawResponse."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return RawResponse(b"".join(chunks))
    finally:
        sock.close()


def raw_post(port, path, token, body, extra_headers=b""):
    """A POST with exact header bytes: `extra_headers` is inserted verbatim
    (each line ending in CRLF)."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    head = (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n"
            b"Content-Type: application/json\r\n" + extra_headers +
            b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n")
    return raw_request(port, head + body)


# --- tracing ----------------------------------------------------------------------

def new_traceparent(flags="01"):
    trace_id = secrets.token_hex(16)
    parent_id = secrets.token_hex(8)
    return "00-%s-%s-%s" % (trace_id, parent_id, flags), trace_id


def trace_id_of(traceparent):
    match = TRACEPARENT_RE.match(traceparent or "")
    assert match, "not a W3C traceparent: %r" % (traceparent,)
    assert match.group(1) != "0" * 32 and match.group(2) != "0" * 16, traceparent
    return match.group(1)


# --- workers ------------------------------------------------------------------------

def worker_with_http(factory, env=None, wait=True, **kwargs):
    """Start a worker with WORKER_HTTP_PORT on 127.0.0.1; returns (worker, base url)."""
    port = free_port()
    overrides = {"WORKER_HTTP_PORT": port, "BIND_ADDRESS": "127.0.0.1"}
    overrides.update(env or {})
    worker = factory.worker(env=overrides, wait=wait, **kwargs)
    return worker, "http://127.0.0.1:%d" % port


def worker_holding(factory, kafka, topic, env=None):
    """Start a worker with /metrics and wait until it holds a partition of
    `topic` and the rebalance has settled; returns (worker, base url, partition)."""
    worker, url = worker_with_http(factory, env=env)
    wait_until(lambda: any(t == topic for t, _ in held_partitions(worker)), 60,
               "the new worker holds a %s partition" % topic)
    probe_all_partitions(kafka, timeout=60)
    wait_http(url + "/readyz", 200, timeout=10)
    (partition,) = sorted(p for t, p in held_partitions(worker) if t == topic)[:1]
    return worker, url, partition


def burst(kafka, worker, items, timeout=30):
    """kafka.request_many(items), published while the worker is stopped for a
    second, so that it finds them waiting together and takes them as one
    batch (a fast worker would otherwise take each as it comes, one by one)."""
    worker.send_signal(signal.SIGSTOP)
    resume = threading.Timer(1.0, worker.send_signal, (signal.SIGCONT,))
    resume.start()
    try:
        return kafka.request_many(items, timeout=timeout)
    finally:
        resume.cancel()
        worker.send_signal(signal.SIGCONT)


def wait_http(url, status=200, timeout=20.0):
    """Poll `url` until it answers `status`; returns the response."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            resp = requests.get(url, timeout=2)
            last = "%s %s" % (resp.status_code, resp.text[:200])
            if resp.status_code == status:
                return resp
        except requests.RequestException as exc:
            last = repr(exc)
        if time.monotonic() > deadline:
            raise AssertionError("%s did not answer %d within %.0f s (last: %s)"
                                 % (url, status, timeout, last))
        time.sleep(0.1)


def held_partitions(worker):
    """The partitions a worker holds now, from its "partitions assigned" /
    "partitions revoked" log lines (cooperative rebalances are incremental).
    Returns a set of (topic, partition)."""
    held = set()
    for record in worker.log_records():
        msg = record.get("msg")
        if msg not in ("partitions assigned", "partitions revoked"):
            continue
        parts = set()
        for item in record.get("partitions") or []:
            topic, _, partition = item.rpartition("/")
            parts.add((topic, int(partition)))
        if msg == "partitions assigned":
            held |= parts
        else:
            held -= parts
    return held


def unique_group():
    return "e2e-private-" + uuid.uuid4().hex[:12]


def repo_root():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", ".."))
