"""The harness's shutdown check (helpers/procs.py) catches what it must: a
process that exits non-zero after SIGTERM, one that ignores SIGTERM, and a
sanitizer report in a log, each named with its report. Runs without the
stack (plain Python processes stand in for the services)."""

import signal
import sys

import pytest

from helpers import procs as procs_mod

LEAK_REPORT = """
=================================================================
==4242==ERROR: LeakSanitizer: detected memory leaks

Direct leak of 48 byte(s) in 1 object(s) allocated from:
    #0 0x7f in malloc
    #1 0x55 in wk_lanes_stop worker/wk_lanes.c:140
SUMMARY: AddressSanitizer: 48 byte(s) leaked in 1 allocation(s).
"""


def _stand_in(tmp_path, name, on_term_exit=0, ignore_term=False, report=""):
    """A process that prints a ready line, then waits for SIGTERM."""
    script = (
        "import signal, sys, time\n"
        "def on_term(*_):\n"
        "    sys.stderr.write(%r); sys.stderr.flush(); sys.exit(%d)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN if %r else on_term)\n"
        "print('{\"msg\":\"ready\"}', flush=True)\n"
        "while True: time.sleep(0.05)\n") % (report, on_term_exit, ignore_term)
    factory = procs_mod.ProcFactory(None, tmp_path, "x" * 64, "selfcheck")
    proc = procs_mod.Proc("worker", name, [sys.executable, "-c", script], {},
                          tmp_path / ("%s.log" % name))
    factory.procs.append(proc)
    proc.wait_for_msg("ready", timeout=10)
    return factory, proc


def test_clean_exit_passes(tmp_path):
    factory, _proc = _stand_in(tmp_path, "clean")
    factory.close()


def test_sanitizer_report_fails_and_is_shown(tmp_path):
    factory, proc = _stand_in(tmp_path, "leaky", on_term_exit=23, report=LEAK_REPORT)
    with pytest.raises(AssertionError) as err:
        factory.close()
    text = str(err.value)
    assert "worker leaky" in text and "exited with 23 after SIGTERM" in text, text
    assert "LeakSanitizer: detected memory leaks" in text and "wk_lanes.c:140" in text, text


def test_ubsan_diagnostic_fails_even_with_exit_0(tmp_path):
    factory, _proc = _stand_in(
        tmp_path, "ub", report="worker/wk_x.c:12:5: runtime error: signed integer overflow\n")
    with pytest.raises(AssertionError) as err:
        factory.close()
    assert "runtime error: signed integer overflow" in str(err.value)


def test_ignored_sigterm_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(procs_mod, "STOP_GRACE_S", 1.0)
    factory, proc = _stand_in(tmp_path, "stuck", ignore_term=True)
    with pytest.raises(AssertionError) as err:
        factory.close()
    assert "did not exit within" in str(err.value) and "SIGKILL" in str(err.value)
    assert proc.returncode == -signal.SIGKILL
