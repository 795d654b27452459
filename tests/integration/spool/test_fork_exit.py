"""Forked workers that end with os._exit (multiprocessing, pre-fork servers) still spool their records."""

from __future__ import annotations

import multiprocessing
import os
import pathlib

import httpx
import pytest
from sidecar_testing import Instrumented, read_spool

CHILDREN = 20


def _call(url: str) -> None:
    httpx.post(url + "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})


def _records(spool: pathlib.Path) -> list[dict[str, object]]:
    return read_spool(spool)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is a POSIX feature")
def test_children_ending_with_os_exit_right_after_a_call(instrumented: Instrumented, model_url: str) -> None:
    pids = []
    for _ in range(CHILDREN):
        pid = os.fork()
        if pid == 0:  # the child: one call, then straight out (no atexit, no flush)
            try:
                _call(model_url)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    records = _records(instrumented.spool)
    assert len(records) == CHILDREN
    assert len({r["sidecar.producer.id"] for r in records}) == CHILDREN  # each child its own producer
    assert not list(instrumented.spool.glob("*.open"))  # and its segment sealed


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is a POSIX feature")
def test_multiprocessing_fork_workers(instrumented: Instrumented, model_url: str) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_call, args=(model_url,)) for _ in range(CHILDREN)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert len(_records(instrumented.spool)) == CHILDREN


def test_os_exit_is_restored_by_uninstrument(instrumented: Instrumented) -> None:
    import sidecar

    wrapped = os._exit
    assert getattr(wrapped, "__module__", "") == "sidecar.app"
    sidecar.uninstrument()
    assert os._exit is not wrapped and getattr(os._exit, "__module__", "") != "sidecar.app"
