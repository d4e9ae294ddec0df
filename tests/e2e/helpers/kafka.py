"""Kafka helpers: produce raw messages, read topics from their current end,
request/reply over ticket.replies, and a probe that every partition is served."""

import json
import threading
import time
import uuid

from bson import ObjectId
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from . import signing

COMMANDS = "ticket.commands"
QUERIES = "ticket.queries"
REPLIES = "ticket.replies"
EVENTS = "ticket.events"
DLQ = "ticket.dlq"

# ticket.replies partition the suite itself uses as a reply address (the
# gateways of the suite use GATEWAY_ID 0..2).
TEST_REPLY_PARTITION = 3


def new_id():
    """A fresh 24-hex ObjectId, as an issuer of a command would make it."""
    return str(ObjectId())


def encode(value):
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class Msg:
    """A consumed record with decoded headers."""

    def __init__(self, raw):
        self.topic = raw.topic()
        self.partition = raw.partition()
        self.offset = raw.offset()
        self.key = raw.key()
        self.value = raw.value()
        self.raw_headers = [(k, v) for k, v in (raw.headers() or [])]
        self.headers = {}
        for k, v in self.raw_headers:
            self.headers[k] = v.decode("utf-8", "replace") if v is not None else None

    def json(self):
        return json.loads(self.value.decode("utf-8"))

    def try_json(self):
        try:
            return self.json()
        except (ValueError, AttributeError, UnicodeDecodeError):
            return None

    def __repr__(self):
        value = self.value[:300] if self.value else self.value
        return "<%s[%d]@%d key=%r headers=%r value=%r>" % (
            self.topic, self.partition, self.offset, self.key, self.headers, value)


class Tap:
    """Reads a topic from its end as of creation (explicit high watermarks,
    so nothing produced after the constructor returns can be missed)."""

    def __init__(self, bootstrap, topic, partitions=None):
        self.topic = topic
        self.messages = []
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": "e2e-tap-" + uuid.uuid4().hex,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "fetch.wait.max.ms": 20,
            "fetch.error.backoff.ms": 20,
            "socket.nagle.disable": True,
        })
        if partitions is None:
            meta = self._consumer.list_topics(topic, timeout=10)
            tmeta = meta.topics.get(topic)
            if tmeta is None or tmeta.error is not None or not tmeta.partitions:
                raise AssertionError("topic %s not found on the broker: %r"
                                     % (topic, tmeta and tmeta.error))
            partitions = sorted(tmeta.partitions)
        self.partitions = list(partitions)
        assignment = []
        for p in self.partitions:
            _low, high = self._consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=10, cached=False)
            assignment.append(TopicPartition(topic, p, high))
        self._consumer.assign(assignment)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def poll(self, seconds):
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            raw = self._consumer.poll(max(0.0, min(0.05, remaining)))
            if raw is not None:
                if raw.error():
                    if raw.error().code() != KafkaError._PARTITION_EOF:
                        raise AssertionError("consumer error on %s: %s" % (self.topic, raw.error()))
                else:
                    self.messages.append(Msg(raw))
                    continue
            if remaining <= 0:
                return

    def wait_for(self, predicate, timeout=15.0, count=1, what="a message"):
        """Messages matching `predicate`, waiting until there are `count`."""
        deadline = time.monotonic() + timeout
        while True:
            matches = [m for m in self.messages if _safe(predicate, m)]
            if len(matches) >= count:
                return matches
            if time.monotonic() > deadline:
                raise AssertionError(
                    "%s on %s: wanted %d, saw %d matching of %d messages within %.0f s; last: %r"
                    % (what, self.topic, count, len(matches), len(self.messages), timeout,
                       self.messages[-3:]))
            self.poll(0.1)

    def wait_quiet(self, seconds):
        self.poll(seconds)
        return self.messages


def _safe(predicate, msg):
    try:
        return predicate(msg)
    except Exception:  # a message that does not fit the predicate's shape
        return False


def reassemble(messages, correlation_id):
    """The reply JSON for `correlation_id` from a list of ticket.replies
    messages (chunked or not), or None if incomplete. Returns (obj, parts)."""
    parts = [m for m in messages if m.headers.get("correlation-id") == correlation_id]
    if not parts:
        return None, parts
    if "chunk-count" not in parts[0].headers:
        return json.loads(parts[0].value.decode("utf-8")), parts
    count = int(parts[0].headers["chunk-count"])
    by_index = {}
    for m in parts:
        assert int(m.headers["chunk-count"]) == count, parts
        by_index[int(m.headers["chunk-index"])] = m
    if len(by_index) < count:
        return None, parts
    assert sorted(by_index) == list(range(count)), sorted(by_index)
    data = b"".join(by_index[i].value for i in range(count))
    return json.loads(data.decode("utf-8")), parts


class Kafka:
    """Producer plus request/reply over ticket.replies (TEST_REPLY_PARTITION)."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self._producer = Producer({
            "bootstrap.servers": bootstrap,
            "linger.ms": 0,
            "socket.nagle.disable": True,
            "acks": "all",
        })
        self._lock = threading.Lock()

    def close(self):
        self._producer.flush(10)

    def tap(self, topic, partitions=None):
        return Tap(self.bootstrap, topic, partitions)

    def produce(self, topic, value, key=None, headers=None, partition=None, sign=True):
        """Produce one message, wait for its delivery; returns (partition, offset)."""
        return self.produce_many([(topic, value, key, headers, partition)], sign=sign)[0]

    def produce_many(self, items, timeout=60, sign=True):
        """items: (topic, value, key, headers, partition); returns [(partition, offset)].
        Commands and queries are signed with the suite's key (helpers.signing)
        unless `sign` is false or they already carry key-id or signature."""
        results = [None] * len(items)
        errors = []

        def callback_for(index):
            def callback(err, msg):
                if err is not None:
                    errors.append((index, err))
                else:
                    results[index] = (msg.partition(), msg.offset())
            return callback

        with self._lock:
            for index, (topic, value, key, headers, partition) in enumerate(items):
                kwargs = {"value": encode(value), "on_delivery": callback_for(index)}
                if key is not None:
                    kwargs["key"] = encode(key)
                header_list = [(k, encode(v)) for k, v in _header_items(headers or [])]
                if sign and topic in (COMMANDS, QUERIES) and not signing.is_signed(header_list):
                    header_list = signing.sign(header_list, kwargs["value"])
                if header_list:
                    kwargs["headers"] = header_list
                if partition is not None:
                    kwargs["partition"] = partition
                while True:
                    try:
                        self._producer.produce(topic, **kwargs)
                        break
                    except BufferError:
                        self._producer.poll(0.1)
                self._producer.poll(0)
            remaining = self._producer.flush(timeout)
        if errors or remaining:
            raise AssertionError("produce failed: %r (undelivered: %d)" % (errors, remaining))
        return results

    @staticmethod
    def reply_headers(correlation_id, partition=TEST_REPLY_PARTITION, extra=None):
        headers = [("correlation-id", correlation_id), ("reply-topic", REPLIES),
                   ("reply-partition", str(partition))]
        headers.extend(_header_items(extra or {}))
        return headers

    def request_many(self, requests_, timeout=20.0):
        """requests_: list of (topic, value, key, partition_or_None).
        Sends each with fresh reply headers; returns [(reply_obj, parts, cid)]."""
        with self.tap(REPLIES, [TEST_REPLY_PARTITION]) as tap:
            cids = []
            items = []
            for topic, value, key, partition in requests_:
                cid = "e2e-" + uuid.uuid4().hex
                cids.append(cid)
                items.append((topic, value, key, self.reply_headers(cid), partition))
            self.produce_many(items)
            return wait_replies(tap, cids, timeout)


def wait_replies(tap, cids, timeout):
    """Wait on a ticket.replies tap for every correlation id in `cids`."""
    deadline = time.monotonic() + timeout
    out = {}
    while True:
        for cid in cids:
            if cid not in out:
                obj, parts = reassemble(tap.messages, cid)
                if obj is not None:
                    out[cid] = (obj, parts, cid)
        if len(out) == len(cids):
            return [out[c] for c in cids]
        if time.monotonic() > deadline:
            missing = [c for c in cids if c not in out]
            raise AssertionError("no reply within %.0f s for %d of %d requests (%s ...)"
                                 % (timeout, len(missing), len(cids), missing[:3]))
        tap.poll(0.1)


def _header_items(headers):
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers)


def create_command(ticket_id, team, actor_id=None, role="customer", category="Support",
                   subject="Account Issue", description="I am facing an issue with my account.",
                   priority=None):
    actor = {"id": actor_id or new_id(), "role": role}
    if team is not None:
        actor["team"] = team
    ticket = {"_id": ticket_id, "category": category, "subject": subject,
              "description": description}
    if priority is not None:
        ticket["priority"] = priority
    return {"version": 1, "type": "ticket.create", "actor": actor, "ticket": ticket}


def reply_command(ticket_id, reply_id, team=None, actor_id=None, role="customer",
                  description="I want to add more details about my issue."):
    actor = {"id": actor_id or new_id(), "role": role}
    if team is not None:
        actor["team"] = team
    return {"version": 1, "type": "ticket.reply", "actor": actor, "ticketId": ticket_id,
            "reply": {"_id": reply_id, "description": description}}


def list_query(team=None, actor_id=None, role="customer"):
    actor = {"id": actor_id or new_id(), "role": role}
    if team is not None:
        actor["team"] = team
    return {"version": 1, "type": "tickets.list", "actor": actor}


def partition_count(bootstrap, topic):
    tap = Tap(bootstrap, topic, partitions=[0])
    try:
        meta = tap._consumer.list_topics(topic, timeout=10)
        return len(meta.topics[topic].partitions)
    finally:
        tap.close()


def probe_all_partitions(kafka, timeout=30.0):
    """Send a create command to every partition of ticket.commands and a list
    query to every partition of ticket.queries and wait for all answers: proves
    that the worker group serves every partition right now. Returns seconds."""
    started = time.monotonic()
    team = "e2e-probe-" + uuid.uuid4().hex[:12]
    requests_ = []
    for p in range(partition_count(kafka.bootstrap, COMMANDS)):
        tid = new_id()
        requests_.append((COMMANDS, create_command(tid, team, subject="probe p%d" % p), tid, p))
    for p in range(partition_count(kafka.bootstrap, QUERIES)):
        requests_.append((QUERIES, list_query(team), team, p))
    replies = kafka.request_many(requests_, timeout=timeout)
    for (topic, _value, _key, p), (obj, _parts, _cid) in zip(requests_, replies):
        assert obj.get("success") is True, "probe of %s[%d] answered %r" % (topic, p, obj)
    return time.monotonic() - started
