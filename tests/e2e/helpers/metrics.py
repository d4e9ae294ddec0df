"""Prometheus text exposition (format 0.0.4): a strict parser that also
checks the conventions (https://prometheus.io/docs/instrumenting/writing_exporters/
and /docs/practices/naming/), and small accessors for the tests."""

import math
import re

import requests

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
CONTENT_TYPE_RE = re.compile(r"^text/plain;\s*version=0\.0\.4(;\s*charset=utf-8)?$", re.I)


class Family:
    def __init__(self, name):
        self.name = name
        self.help = None
        self.type = None
        self.samples = []  # (sample name, labels dict, value)

    def __repr__(self):
        return "<family %s %s, %d samples>" % (self.name, self.type, len(self.samples))


def _parse_labels(text, line):
    labels = {}
    pos = 0
    n = len(text)
    while pos < n:
        match = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)=\"").match(text, pos)
        assert match, "bad label syntax in %r" % line
        name = match.group(1)
        pos = match.end()
        value = []
        while True:
            assert pos < n, "unterminated label value in %r" % line
            ch = text[pos]
            if ch == "\\":
                nxt = text[pos + 1]
                assert nxt in ('\\', '"', 'n'), "bad escape in %r" % line
                value.append({"\\": "\\", '"': '"', "n": "\n"}[nxt])
                pos += 2
            elif ch == '"':
                pos += 1
                break
            else:
                value.append(ch)
                pos += 1
        assert name not in labels, "label %s twice in %r" % (name, line)
        labels[name] = "".join(value)
        rest = text[pos:].lstrip()
        if rest.startswith(","):
            pos = text.index(",", pos) + 1
        else:
            assert rest == "", "junk after labels in %r" % line
            break
    return labels


def _value(text, line):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise AssertionError("sample value %r is not a number in %r" % (text, line))


def _family_of(sample_name, families):
    """The declared family a sample belongs to (histogram suffixes)."""
    if sample_name in families:
        return families[sample_name]
    for suffix in ("_bucket", "_sum", "_count"):
        if sample_name.endswith(suffix):
            base = sample_name[: -len(suffix)]
            if base in families and families[base].type in ("histogram", "summary"):
                return families[base]
    return None


def parse(text):
    """Parse an exposition strictly; returns {family name: Family}.
    Asserts the format: one HELP and one TYPE per family before its samples,
    samples of a family contiguous, no duplicate series, valid names."""
    assert text.endswith("\n"), "exposition must end with a newline"
    families = {}
    order = []
    current = None
    seen_series = set()
    closed = set()
    for line in text.split("\n")[:-1]:
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                assert METRIC_NAME_RE.match(name), "bad metric name %r" % name
                fam = families.get(name)
                if fam is None:
                    assert name not in closed, "family %s declared twice" % name
                    fam = families[name] = Family(name)
                    order.append(name)
                    if current is not None and current.name != name:
                        closed.add(current.name)
                    current = fam
                assert fam is current, "HELP/TYPE of %s after other families' samples" % name
                if parts[1] == "HELP":
                    assert fam.help is None, "two HELP lines for %s" % name
                    assert not fam.samples, "HELP of %s after its samples" % name
                    fam.help = parts[3] if len(parts) > 3 else ""
                else:
                    assert fam.type is None, "two TYPE lines for %s" % name
                    assert not fam.samples, "TYPE of %s after its samples" % name
                    fam.type = parts[3].strip() if len(parts) > 3 else ""
                    assert fam.type in TYPES, "unknown TYPE %r for %s" % (fam.type, name)
            continue
        match = SAMPLE_RE.match(line)
        assert match, "not a sample line: %r" % line
        sample_name, _, label_text, value_text = match.group(1, 2, 3, 4)
        labels = _parse_labels(label_text, line) if label_text else {}
        for label in labels:
            assert LABEL_NAME_RE.match(label) and not label.startswith("__"), \
                "bad label name %r in %r" % (label, line)
        fam = _family_of(sample_name, families)
        assert fam is not None, "sample %r has no HELP/TYPE family" % line
        assert fam is current and fam.name not in closed, \
            "samples of %s are not contiguous (line %r)" % (fam.name, line)
        key = (sample_name, tuple(sorted(labels.items())))
        assert key not in seen_series, "duplicate series %r" % line
        seen_series.add(key)
        fam.samples.append((sample_name, labels, _value(value_text, line)))
    for name in order:
        fam = families[name]
        assert fam.help, "family %s has no HELP text" % name
        assert fam.type, "family %s has no TYPE" % name
    return families


def check_conventions(families):
    """Naming and histogram rules; returns nothing, raises with the offender."""
    for name, fam in families.items():
        if fam.type == "counter":
            assert name.endswith("_total"), "counter %s must end in _total" % name
            for sample_name, labels, value in fam.samples:
                assert sample_name == name, (name, sample_name)
                assert value >= 0 and value == int(value), "counter %s%r = %r" % (name, labels, value)
        else:
            assert not name.endswith("_total"), "%s %s must not end in _total" % (fam.type, name)
        if fam.type == "gauge":
            for sample_name, _labels, _value in fam.samples:
                assert sample_name == name, (name, sample_name)
        lowered = name.lower()
        for bad_unit in ("_ms", "millis", "_microseconds", "_us_", "_minutes", "_hours"):
            assert bad_unit not in lowered + "_", "%s: use base units (seconds)" % name
        if set(lowered.split("_")) & {"duration", "latency", "time", "elapsed"}:
            assert name.endswith("_seconds") or name.endswith("_seconds_total"), \
                "%s measures time: name must end in _seconds" % name
        if fam.type == "histogram":
            check_histogram(fam)


def _series_key(labels, drop=("le",)):
    return tuple(sorted((k, v) for k, v in labels.items() if k not in drop))


def check_histogram(fam):
    name = fam.name
    buckets, sums, counts = {}, {}, {}
    for sample_name, labels, value in fam.samples:
        if sample_name == name + "_bucket":
            assert "le" in labels, "bucket without le: %s%r" % (sample_name, labels)
            buckets.setdefault(_series_key(labels), []).append((labels["le"], value))
        elif sample_name == name + "_sum":
            assert "le" not in labels
            sums[_series_key(labels)] = value
        elif sample_name == name + "_count":
            assert "le" not in labels
            counts[_series_key(labels)] = value
        else:
            raise AssertionError("histogram %s has a sample %s" % (name, sample_name))
    assert set(buckets) == set(sums) == set(counts), \
        "histogram %s: series with buckets %r, sums %r, counts %r" % (
            name, sorted(buckets), sorted(sums), sorted(counts))
    for key, items in buckets.items():
        les = [_value(le, name) for le, _ in items]
        assert les == sorted(les) and len(set(les)) == len(les), \
            "%s%r: le not strictly increasing: %r" % (name, key, [le for le, _ in items])
        assert items[-1][0] == "+Inf", "%s%r: last bucket must be le=\"+Inf\"" % (name, key)
        values = [v for _, v in items]
        assert values == sorted(values), "%s%r: buckets not cumulative: %r" % (name, key, values)
        assert values[-1] == counts[key], \
            "%s%r: +Inf bucket %r != _count %r" % (name, key, values[-1], counts[key])
        assert sums[key] >= 0, (name, key, sums[key])
        assert len(items) >= 2, "%s%r: only the +Inf bucket" % (name, key)


def scrape(url, timeout=10):
    """GET a /metrics URL; checks status and content type; returns (families, text)."""
    resp = requests.get(url, timeout=timeout)
    assert resp.status_code == 200, "%s -> %s %s" % (url, resp.status_code, resp.text[:300])
    ctype = resp.headers.get("Content-Type", "")
    assert CONTENT_TYPE_RE.match(ctype), "Content-Type of %s is %r" % (url, ctype)
    text = resp.text
    return parse(text), text


def value(families, name, default=None, sample=None, **labels):
    """Value of the series `sample or name` whose labels are exactly `labels`."""
    fam = _family_of(sample or name, families) if (sample or name) not in families else families[name]
    if fam is None:
        return default
    wanted = sample or name
    for sample_name, sample_labels, v in fam.samples:
        if sample_name == wanted and sample_labels == labels:
            return v
    return default


def series(families, name, sample=None):
    """[(labels, value)] of one family's samples named `sample or name`."""
    fam = families.get(name)
    if fam is None:
        return []
    wanted = sample or name
    return [(labels, v) for sample_name, labels, v in fam.samples if sample_name == wanted]


def counter_by(families, name, label_names):
    """{tuple of label values: value} for a counter family."""
    out = {}
    for labels, v in series(families, name):
        out[tuple(labels.get(n) for n in label_names)] = v
    return out


def histogram_count(families, name, **labels):
    return value(families, name, default=0, sample=name + "_count", **labels)
