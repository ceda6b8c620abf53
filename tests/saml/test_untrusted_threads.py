"""Untrusted SAML XML is parsed on threads retired after a byte budget: lxml's per-thread name
dictionary never shrinks, and only a thread's end frees it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from deskgate.saml.untrusted_threads import RetiringThreads

from helpers import run_async


def test_results_and_exceptions_reach_the_caller_from_another_thread() -> None:
    threads = RetiringThreads(threads=2, retire_after_bytes=1000)
    caller = threading.get_ident()
    assert threads.run(threading.get_ident, cost=1) != caller
    with pytest.raises(KeyError, match="missing"):
        threads.run(lambda: {}["missing"], cost=1)


def test_a_thread_ends_once_it_has_parsed_its_budget() -> None:
    threads = RetiringThreads(threads=1, retire_after_bytes=100)
    first = {threads.run(threading.get_ident, cost=40) for _ in range(2)}  # 80: still under
    assert len(first) == 1 and threads.retired == 0
    threads.run(threading.get_ident, cost=40)  # 120: this thread's last task
    after = threads.run(threading.get_ident, cost=1)
    assert threads.retired == 1
    assert after not in first


def test_work_sent_from_the_event_loop_parses_in_place_against_the_threads_budget() -> None:
    threads = RetiringThreads(threads=1, retire_after_bytes=100)

    def request() -> tuple[int, int]:  # a request whose work parses through `run`
        return threading.get_ident(), threads.run(threading.get_ident, cost=150)

    outer, inner = run_async(lambda: threads.run_async(request))
    assert outer == inner != threading.get_ident()  # no second hop
    after = threads.run(threading.get_ident, cost=1)
    assert threads.retired == 1 and after != outer  # the 150 bytes spent its budget


_GROWTH = textwrap.dedent(
    """
    import gc, sys
    from deskgate.saml._xml import parse_hardened
    from deskgate.saml.untrusted_threads import RetiringThreads

    def rss_mib():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * 4096 / 2**20

    def crafted(k):  # 40,000 element names never seen before: ~0.6 MB
        return ("<r>" + "".join(f"<n{k}x{i:07d}/>" for i in range(40000)) + "</r>").encode()

    threads = RetiringThreads(threads=1, retire_after_bytes=int(sys.argv[1]))
    threads.run(lambda: parse_hardened(b"<r/>"), cost=0)
    gc.collect()
    start = rss_mib()
    for k in range(100):
        document = crafted(k)
        threads.run(lambda: parse_hardened(document) is not None, cost=len(document))
    gc.collect()
    print(rss_mib() - start)
    """
)


def _growth_mib(retire_after_bytes: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _GROWTH, str(retire_after_bytes)],
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    ).stdout
    return float(out.strip())


def test_crafted_names_do_not_grow_memory_past_the_budget() -> None:
    kept = _growth_mib(retire_after_bytes=10**12)  # one thread for all 100 documents
    retired = _growth_mib(retire_after_bytes=4 * 1024 * 1024)
    assert kept > 120, f"the crafted documents should grow one thread's dictionary ({kept:.0f} MiB)"
    assert retired < 60, f"retiring threads should bound the growth ({retired:.0f} MiB)"
