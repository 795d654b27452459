"""`sidecar run` given the three node URLs of a real 3-node cluster, while nodes go away mid-ship.

Faults: a data node stopped and started again; the elected master stopped (the other two elect a
new one) and started again. A producer keeps sealing spool segments throughout, so the fault lands
in the middle of shipping. After each fault: the ids indexed are exactly the ids spooled (nothing
lost, nothing twice), read with a plain ``_search`` (not the sidecar's reader), and the fault is
visible on the sidecar's /metrics (the stopped node's failure counter).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import urllib3
from sidecar_testing import HMAC_KEY, stop_process

from sidecar.ship import SpoolDoc

REPO = pathlib.Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "elasticsearch.sh"
BIN = pathlib.Path(sys.executable).parent
TODAY = dt.datetime.now(tz=dt.timezone.utc).strftime("%Y.%m.%d")
HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=60))

pytestmark = pytest.mark.timeout(900)


def call(urls: list[str], method: str, path: str, body: Any = None) -> Any:
    """A request to whichever node answers (a plain client, independent of the sidecar's)."""
    last: Exception | None = None
    for url in urls:
        try:
            resp = HTTP.request(method, url + path, body=None if body is None else json.dumps(body).encode(),
                                headers={"Content-Type": "application/json"})
        except urllib3.exceptions.HTTPError as exc:
            last = exc
            continue
        if resp.status >= 300:
            raise AssertionError(f"{method} {path}: HTTP {resp.status}: {resp.data[:500]!r}")
        return json.loads(resp.data) if resp.data else None
    raise AssertionError(f"no node answered {method} {path}: {last}")


def indexed_ids(urls: list[str], pattern: str) -> list[str]:
    """Every ``_id`` under ``pattern``, duplicates kept (search_after on the unique event.id)."""
    call(urls, "POST", f"/{pattern}/_refresh?allow_no_indices=true")
    out: list[str] = []
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {"size": 5000, "_source": False, "sort": [{"event.id": "asc"}]}
        if after:
            body["search_after"] = after
        hits = call(urls, "POST", f"/{pattern}/_search?allow_no_indices=true", body)["hits"]["hits"]
        out.extend(h["_id"] for h in hits)
        if len(hits) < 5000:
            return out
        after = hits[-1]["sort"]


def node_urls_by_name(urls: list[str]) -> dict[str, str]:
    nodes = call(urls, "GET", "/_nodes/http?filter_path=nodes.*.name,nodes.*.http.publish_address")["nodes"]
    return {n["name"]: "http://" + n["http"]["publish_address"].split("/")[-1] for n in nodes.values()}


def master_url(urls: list[str]) -> str:
    name = call(urls, "GET", "/_cat/master?format=json")[0]["node"]
    return node_urls_by_name(urls)[name]


def script(*args: str) -> None:
    proc = subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"elasticsearch.sh {' '.join(args)}: {proc.stderr[-3000:]}"


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def sample(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, AssertionError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


class Producer:
    """Seals a spool segment of ``per_segment`` records every ``every`` seconds until stopped."""

    def __init__(self, spool: pathlib.Path, make_docs: Any, per_segment: int = 300, every: float = 0.3) -> None:
        self.spool, self.make_docs, self.per_segment, self.every = spool, make_docs, per_segment, every
        self.ids: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        spool.mkdir(parents=True, exist_ok=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            docs: list[SpoolDoc] = self.make_docs(self.per_segment, day=TODAY, start=n * self.per_segment)
            tmp = self.spool.parent / "segment.tmp"
            tmp.write_bytes(b"".join(d.raw + b"\n" for d in docs))
            os.replace(tmp, self.spool / f"feedbeef-{n + 1:06d}-{1700000000000 + n}.jsonl")
            self.ids.extend(d.doc_id for d in docs)
            n += 1
            self._stop.wait(self.every)

    def __enter__(self) -> Producer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.fixture
def cluster(es_cluster_urls: list[str]) -> Iterator[list[str]]:
    """The cluster, all three nodes up again after the test (whatever it stopped)."""
    yield es_cluster_urls
    for url in es_cluster_urls:
        script("start-node", url)  # no-op for a running node; waits until the cluster has 3 nodes


@pytest.fixture
def prefix(cluster: list[str]) -> Iterator[str]:
    name = f"c{os.urandom(5).hex()}"
    yield name
    call(cluster, "DELETE", f"/{name}-*?expand_wildcards=all&ignore_unavailable=true&allow_no_indices=true")
    call(cluster, "DELETE", f"/_index_template/{name}-*")


def ship_through_fault(tmp_path: pathlib.Path, urls: list[str], prefix: str, docs_factory: Any,
                       victim: Callable[[], str]) -> tuple[list[str], list[str], str, str]:
    """Run `sidecar run` on all three URLs while a producer spools; stop ``victim()`` mid-ship, wait
    until /metrics shows its failure, start it again, drain. Returns (spooled ids, indexed ids,
    /metrics text, victim URL)."""
    spool = tmp_path / "spool"
    port = free_port()
    env = dict(os.environ, SIDECAR_SPOOL_DIR=str(spool), SIDECAR_ELASTICSEARCH_URL=",".join(urls),
               SIDECAR_INDEX_PREFIX=prefix, SIDECAR_HMAC_KEY=HMAC_KEY, SIDECAR_LISTEN=f"127.0.0.1:{port}",
               SIDECAR_POLL_SECONDS="0.2", SIDECAR_BATCH_SIZE="300", SIDECAR_ELASTICSEARCH_TIMEOUT="20")
    with Producer(spool, docs_factory) as producer:
        proc = subprocess.Popen([str(BIN / "sidecar"), "run"], env=env, stdout=subprocess.DEVNULL,
                                stderr=open(tmp_path / "sidecar.log", "wb"))  # noqa: SIM115
        try:
            wait_for(lambda: sample(metrics_text(port), 'sidecar_shipped_records_total{sink="elasticsearch"}')
                     >= 1500, 180, "the first deliveries")
            url = victim()
            node = url.removeprefix("http://")
            failures = f'sidecar_elasticsearch_node_failures_total{{node="{node}"}}'
            before = sample(metrics_text(port), failures)
            script("stop-node", url)
            wait_for(lambda: sample(metrics_text(port), failures) > before, 180, f"{failures} to move")
            shipped = sample(metrics_text(port), 'sidecar_shipped_records_total{sink="elasticsearch"}')
            wait_for(lambda: sample(metrics_text(port), 'sidecar_shipped_records_total{sink="elasticsearch"}')
                     >= shipped + 1500, 240, "deliveries to go on with a node down")
            script("start-node", url)
        finally:
            producer.__exit__()
        try:
            wait_for(lambda: sample(metrics_text(port), "sidecar_spool_pending_bytes") == 0
                     and sample(metrics_text(port), 'sidecar_shipped_records_total{sink="elasticsearch"}')
                     >= len(producer.ids), 300, "the spool to drain")
            text = metrics_text(port)
        finally:
            stop_process(proc)
    assert before == 0, "the node was counted as failed before it was stopped"
    return producer.ids, indexed_ids(urls, f"{prefix}-2*"), text, url


def assert_exact(spooled: list[str], indexed: list[str], text: str = "", victim: str = "") -> None:
    node = victim.removeprefix("http://")
    sink = '{sink="elasticsearch"}'
    failures = sample(text, "sidecar_elasticsearch_node_failures_total" + '{node="' + node + '"}')
    print(f"\nspooled {len(spooled)} ids, indexed {len(indexed)} ({len(set(indexed))} distinct); "
          f"lost {len(set(spooled) - set(indexed))}, twice {len(indexed) - len(set(indexed))}; "
          f"node_failures[{node}]={failures}, retries={sample(text, 'sidecar_sink_retries_total' + sink)}, "
          f"duplicates={sample(text, 'sidecar_duplicate_records_total' + sink)}")
    assert len(set(spooled)) == len(spooled)
    missing = set(spooled) - set(indexed)
    extra = set(indexed) - set(spooled)
    assert not missing, f"{len(missing)} records lost, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} unknown records, e.g. {sorted(extra)[:3]}"
    assert len(indexed) == len(set(indexed)), f"{len(indexed) - len(set(indexed))} records indexed twice"


def test_data_node_stopped_mid_ship_then_restarted(tmp_path: pathlib.Path, cluster: list[str], prefix: str,
                                                   docs_factory: Any) -> None:
    def a_non_master() -> str:
        master = master_url(cluster)
        return next(u for u in cluster if u != master)

    spooled, indexed, text, victim = ship_through_fault(tmp_path, cluster, prefix, docs_factory, a_non_master)
    assert_exact(spooled, indexed, text, victim)
    node = victim.removeprefix("http://")
    assert sample(text, f'sidecar_elasticsearch_node_failures_total{{node="{node}"}}') >= 1
    assert sample(text, 'sidecar_elasticsearch_nodes{state="alive"}') + \
        sample(text, 'sidecar_elasticsearch_nodes{state="dead"}') == 3
    # Replicas follow the cluster (auto_expand 0-1): each shard had a copy on another node.
    settings = call(cluster, "GET", f"/{prefix}-2*/_settings/index.auto_expand_replicas?flat_settings=true")
    assert {v["settings"]["index.auto_expand_replicas"] for v in settings.values()} == {"0-1"}


def test_elected_master_stopped_mid_ship(tmp_path: pathlib.Path, cluster: list[str], prefix: str,
                                         docs_factory: Any) -> None:
    old_master: list[str] = []

    def the_master() -> str:
        old_master.append(master_url(cluster))
        return old_master[0]

    spooled, indexed, text, victim = ship_through_fault(tmp_path, cluster, prefix, docs_factory, the_master)
    assert_exact(spooled, indexed, text, victim)
    node = victim.removeprefix("http://")
    assert sample(text, f'sidecar_elasticsearch_node_failures_total{{node="{node}"}}') >= 1
    # The cluster went on under another master.
    assert master_url(cluster) in cluster
