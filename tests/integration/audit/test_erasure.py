"""`sidecar erase` and `sidecar hold` on the embedded store and on a real Elasticsearch.

Records come from the real spool writer and shipper; the commands run through the CLI's `main`; the
checks read the stores directly (rows, documents, raw file bytes), never through the code under test."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import sqlite3
from typing import Any

import pytest
from audit_testing import KEY, SECRET, EsTarget, SqliteTarget, Target, kinds, ship, write_records

from sidecar import cli
from sidecar.audit import field_digest, verify
from sidecar.audit._keys import KeyRing
from sidecar.audit.ledger import read_ledger
from sidecar.config import ShipperSettings, load_settings
from sidecar.record import AuditRecord
from sidecar.redact import Redactor, derive
from sidecar.retention import enforce

RING = KeyRing([KEY])
USERS = 4
PSEUDONYMS = Redactor(derive(SECRET, "pseudonym"))


def mail_tag(user: int) -> str:
    """The tag redaction gives user ``user``'s e-mail address."""
    return PSEUDONYMS.placeholder("EMAIL", f"user{user}@example.com")


def secret_of(user: int, item: int) -> str:
    return f"QZX{user}SECRETWORDS{item:05d}"


def produce(spool: pathlib.Path, producer: str, n: int, start: dt.datetime) -> None:
    """Records one second apart from ``start``; each request content holds a unique string of its user
    and the pseudonym tag of that user's e-mail, each response the next user's tag."""
    def process(item: int, seq: int) -> bytes:
        ts = (start + dt.timedelta(seconds=item)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        user = item % USERS
        return AuditRecord(event_id=f"{producer}-{seq}", timestamp=ts, producer_id=producer, sequence=seq,
                           provider="openai", request_model="gpt-x", status_code=200, input_tokens=11,
                           output_tokens=7, user_id=f"user-{user}", credential_fingerprint=f"fp{user:04d}",
                           request_content=f"{secret_of(user, item)} mail {mail_tag(user)}",
                           response_content=f"answer {secret_of(user, item)}, ask {mail_tag((user + 1) % USERS)}"
                           ).to_json().encode()

    write_records(spool, producer, n, process, key=KEY, segment_bytes=8000, flush_timeout=30)


@pytest.fixture(params=["embedded", "elasticsearch"])
def target(request: pytest.FixtureRequest, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Target:
    for k in [k for k in __import__("os").environ if k.startswith("SIDECAR_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("SIDECAR_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("SIDECAR_HMAC_KEY", SECRET.decode())
    if request.param == "embedded":
        t: Target = SqliteTarget(tmp_path / "audit.db")
        monkeypatch.setenv("SIDECAR_STORE_PATH", str(tmp_path / "audit.db"))
    else:
        prefix = request.getfixturevalue("es_prefix")
        t = EsTarget(request.getfixturevalue("es"), request.getfixturevalue("elasticsearch_url"), prefix)
        monkeypatch.setenv("SIDECAR_ELASTICSEARCH_URL", request.getfixturevalue("elasticsearch_url"))
        monkeypatch.setenv("SIDECAR_INDEX_PREFIX", prefix)
    return t


def fill(t: Target, tmp_path: pathlib.Path, *, days_ago: float = 0.1, n: int = 40, producer: str = "p1") -> None:
    spool = tmp_path / f"spool-{producer}"
    produce(spool, producer, n, dt.datetime.now(tz=dt.timezone.utc) - dt.timedelta(days=days_ago))
    ship(spool, t.sink, state=tmp_path / f"state-{producer}")  # one sidecar chain per batch of days


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = cli.main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def all_records(t: Target) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(t, EsTarget):
        t.es.refresh(f"{t.prefix}-*")
        return list(t.sink.scan(f"{t.prefix}-2*,{t.prefix}-hold", ["event.id"]))
    return t.records()


def events(t: Target) -> list[dict[str, Any]]:
    if isinstance(t, EsTarget):
        t.es.refresh(f"{t.prefix}-*")
        return [d for _, d in t.sink.scan(f"{t.prefix}-events", ["sidecar.event.seq"])]
    conn = sqlite3.connect(t.path)
    return [json.loads(d) for (d,) in conn.execute("SELECT doc FROM events ORDER BY seq")]


def check(t: Target, **kw: Any) -> Any:
    """Verify as `sidecar audit verify` does: a held copy identical to its original counts once."""
    once: dict[str, dict[str, Any]] = {}
    records = [(rid, d) for rid, d in all_records(t) if once.setdefault(rid, d) is d or once[rid] != d]
    return verify(records, t.digests(), RING, retention_days=90, events=events(t), **kw)


def test_erase_then_verify_ok(target: Target, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(target, tmp_path)
    rc, _, err = run(capsys, "erase", "--user", "user-1", "--reason", "GDPR art. 17 request 42", "--operator", "dpo")
    assert rc == 0, err
    docs = dict(all_records(target))
    erased = [d for d in docs.values() if "sidecar.erased" in d]
    assert len(erased) == 10
    for d in erased:  # content and personal fields gone, the audit metadata kept
        assert not {"sidecar.request.content", "sidecar.response.content", "user.id",
                    "sidecar.credential.fingerprint"} & d.keys()
        assert (d["gen_ai.request.model"], d["http.response.status_code"], d["gen_ai.usage.input_tokens"]) == (
            "gpt-x", 200, 11)
        assert d["@timestamp"] and d["sidecar.chain.hash"]
    assert all("SECRETWORDS" not in json.dumps(d) or d.get("user.id") != "user-1" for d in docs.values())
    event = events(target)[0]
    assert event["sidecar.event.kind"] == "erasure" and event["sidecar.event.operator"] == "dpo"
    assert sorted(event["sidecar.event.records"]) == sorted(str(d["event.id"]) for d in erased)
    assert "user-1" not in json.dumps(event)  # the event names records, not the subject
    report = check(target)
    assert report.ok and report.erased == 10, report.findings
    rc, out, err = run(capsys, "audit", "verify")
    assert rc == 0 and out.startswith("erased ") and "10 records erased" in err, (out, err)
    if isinstance(target, EsTarget):  # the old versions were merged away, not only hidden
        stats = target.es.request("GET", f"/{target.prefix}-2*/_stats/docs")
        assert stats["_all"]["primaries"]["docs"]["deleted"] == 0
        assert stats["_all"]["primaries"]["docs"]["count"] == 40


def test_erase_by_hand_without_a_signed_event_is_caught(target: Target, tmp_path: pathlib.Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Someone holding the key removes a field and keeps its correct digest: the chain verifies, the missing
    event does not."""
    fill(target, tmp_path)
    doc = target.record("p1-5")
    name = "sidecar.request.content"
    hand = {k: v for k, v in doc.items() if k != name}
    hand["sidecar.erased"] = {name: field_digest(KEY, name, doc[name])}
    target.put_record("p1-5", hand)
    report = check(target)
    assert [(f.kind, f.where) for f in report.findings] == [("unsigned_erasure", "p1-5")]
    rc, out, _ = run(capsys, "audit", "verify")
    assert rc == 1 and out.startswith("unsigned_erasure")


def test_deleting_the_erasure_event_is_caught(target: Target, tmp_path: pathlib.Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    fill(target, tmp_path)
    assert run(capsys, "erase", "--record", "p1-3", "--fields", "content", "--reason", "r")[0] == 0
    assert run(capsys, "hold", "add", "--user", "user-2", "--reason", "case 7")[0] == 0
    evs = events(target)
    assert [e["sidecar.event.kind"] for e in evs] == ["erasure", "hold"]
    _delete_event(target, evs[0]["sidecar.event.id"])
    assert {"unsigned_erasure", "missing_event"} <= kinds(check(target))


def test_restored_content_after_a_signed_erasure_is_caught(target: Target, tmp_path: pathlib.Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    fill(target, tmp_path)
    original = target.record("p1-3")
    assert run(capsys, "erase", "--record", "p1-3", "--reason", "r")[0] == 0
    target.put_record("p1-3", original)  # put back from a backup: verifies as a record, not as erased
    assert [(f.kind, f.where) for f in check(target).findings] == [("unerased", "p1-3")]


def test_other_changes_still_detected_after_erasure(target: Target, tmp_path: pathlib.Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    fill(target, tmp_path)
    assert run(capsys, "erase", "--user", "user-0", "--reason", "r")[0] == 0
    erased = target.record("p1-4")  # user-0's record
    target.put_record("p1-4", dict(erased, **{"http.response.status_code": 500}))
    target.delete_record("p1-9")
    found = {(f.kind, f.where) for f in check(target).findings}
    assert {("altered", "p1-4"), ("deleted", "p1-10")} <= found


def test_hold_keeps_records_past_retention(target: Target, tmp_path: pathlib.Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    fill(target, tmp_path, days_ago=200, producer="old")
    fill(target, tmp_path, days_ago=0.1, producer="new")
    rc, hold_id, err = run(capsys, "hold", "add", "--user", "user-3", "--reason", "litigation 2026-17",
                           "--operator", "legal")
    assert rc == 0, err
    report = enforce(load_settings(ShipperSettings))  # the pass `sidecar run` makes every hour
    assert report.ok and report.deleted and any("legal hold" in n for n in report.notes), report.lines()
    kept = dict(all_records(target))
    old = [rid for rid in kept if rid.startswith("old-")]
    assert old and all(kept[r]["user.id"] == "user-3" for r in old)
    assert len(old) == 10  # every held record of the expired days, nothing else
    assert len([r for r in kept if r.startswith("new-")]) == 40
    report = check(target)
    assert report.ok and report.holds == 1, report.findings
    rc, out, err = run(capsys, "audit", "verify")
    assert rc == 0 and "1 legal holds in force" in err, out + err
    rc, out, err = run(capsys, "retention", "verify")
    assert rc == 0, out + err
    rc, out, _ = run(capsys, "hold", "list")
    assert rc == 0 and out.startswith(hold_id.strip()) and "user=user-3" in out
    # Released: the next pass deletes what retention says.
    assert run(capsys, "hold", "remove", hold_id.strip(), "--reason", "case closed")[0] == 0
    assert run(capsys, "retention", "apply")[0] == 0
    assert not [rid for rid, _ in all_records(target) if rid.startswith("old-")]
    assert check(target).ok
    assert run(capsys, "retention", "verify")[0] == 0
    if isinstance(target, EsTarget):  # a copy left in the hold index after its hold ended outstays retention
        stale = kept[old[0]]
        target.es.request("PUT", f"/{target.prefix}-hold/_doc/{old[0]}?refresh=true", stale, ok=(200, 201))
        rc, out, _ = run(capsys, "retention", "verify")
        assert rc == 1 and "under no legal hold" in out


def test_erasing_held_records_is_refused(target: Target, tmp_path: pathlib.Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    fill(target, tmp_path)
    assert run(capsys, "hold", "add", "--conversation", "none", "--record", "p1-6", "--reason", "r")[0] == 0
    assert run(capsys, "hold", "add", "--record", "p1-6", "--reason", "r")[0] == 0
    before = dict(all_records(target))
    rc, out, err = run(capsys, "erase", "--user", "user-1", "--reason", "GDPR")  # p1-6 is user-1's
    assert rc == 1 and len(err.strip().splitlines()) == 1 and "legal hold" in err and not out
    assert dict(all_records(target)) == before  # nothing changed, no event written
    assert [e["sidecar.event.kind"] for e in events(target)] == ["hold", "hold"]
    # Another user's records are not held: erasing them goes ahead.
    assert run(capsys, "erase", "--user", "user-2", "--reason", "GDPR")[0] == 0


def test_dry_run_changes_nothing_and_usage_errors(target: Target, tmp_path: pathlib.Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    fill(target, tmp_path)
    before = dict(all_records(target))
    rc, _, err = run(capsys, "erase", "--user", "user-1", "--dry-run", "--reason", "r")
    assert rc == 0 and "would erase" in err and "10 of 10" in err
    assert dict(all_records(target)) == before and not events(target)
    rc, _, err = run(capsys, "hold", "add", "--reason", "r")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    rc, _, err = run(capsys, "hold", "remove", "hold-nope", "--reason", "r")
    assert rc == 1 and len(err.strip().splitlines()) == 1


def test_denied_pseudonyms(target: Target, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The subject's e-mail, given as a value, is denied: other users' records that mention it show
    <erased> in views; `--deny-pseudonyms` also takes every tag found in the subject's erased fields."""
    fill(target, tmp_path)
    rc, _, err = run(capsys, "erase", "--user", "user-1", "--deny-value", "EMAIL=User1@Example.com", "--reason", "r")
    assert rc == 0, err
    assert read_ledger(events(target), RING).denied_tags() == {mail_tag(1)}
    if isinstance(target, SqliteTarget):
        rc, out, _ = run(capsys, "query", "--json", "--user", "user-0")
        assert rc == 0 and out.count("<erased>") == 10 and mail_tag(1) not in out and mail_tag(0) in out
    rc, _, err = run(capsys, "erase", "--user", "user-2", "--deny-pseudonyms", "--reason", "r")
    assert rc == 0, err
    assert read_ledger(events(target), RING).denied_tags() == {mail_tag(1), mail_tag(2), mail_tag(3)}
    with pytest.raises(SystemExit) as usage:  # argparse: exit 2
        run(capsys, "erase", "--user", "user-3", "--deny-value", "EMAIL", "--reason", "r")
    assert usage.value.code == 2 and "TYPE=VALUE" in capsys.readouterr().err


def _delete_event(t: Target, eid: str) -> None:
    if isinstance(t, EsTarget):
        t.es.request("DELETE", f"/{t.prefix}-events/_doc/{eid}")
        return
    conn = sqlite3.connect(t.path)
    conn.execute("DELETE FROM events WHERE id = ?", (eid,))
    conn.commit()


def test_cut_ledger_tail_needs_the_anchor(target: Target, tmp_path: pathlib.Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The newest hold event has no successor: deleting it is seen only against an exported head."""
    fill(target, tmp_path)
    assert run(capsys, "hold", "add", "--user", "user-2", "--reason", "case 9")[0] == 0
    if isinstance(target, EsTarget):
        target.es.refresh(f"{target.prefix}-*")  # digests just shipped: searchable after a refresh
    rc, heads, _ = run(capsys, "audit", "anchor")
    assert rc == 0 and '"sidecar.event.seq": 1' in heads
    anchor = tmp_path / "heads.jsonl"
    anchor.write_text(heads)
    assert run(capsys, "audit", "verify", "--anchor", str(anchor))[0] == 0
    _delete_event(target, "event-00000001")
    assert run(capsys, "audit", "verify")[0] == 0  # the cut tail alone looks like no hold was ever placed
    rc, out, _ = run(capsys, "audit", "verify", "--anchor", str(anchor))
    assert rc == 1 and out.startswith("missing_event") and "event-00000001" in out


def test_hold_by_time_range_and_record(target: Target, tmp_path: pathlib.Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Records 200 days old: a range hold keeps its 5 seconds of records (since inclusive, until exclusive)
    and a record hold one more; retention deletes the rest, and verify still passes."""
    start = dt.datetime.now(tz=dt.timezone.utc) - dt.timedelta(days=200)
    spool = tmp_path / "spool-old"
    produce(spool, "old", 30, start)
    ship(spool, target.sink, state=tmp_path / "state-old")
    stamp = lambda s: (start + dt.timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
    assert run(capsys, "hold", "add", "--since", stamp(10), "--until", stamp(15), "--reason", "range")[0] == 0
    assert run(capsys, "hold", "add", "--record", "old-25", "--reason", "one")[0] == 0
    assert run(capsys, "retention", "apply")[0] == 0
    kept = sorted(int(rid.split("-")[1]) for rid, _ in all_records(target))
    assert kept == [11, 12, 13, 14, 15, 25]  # items 10..14 are sequences 11..15
    assert check(target).ok
    assert run(capsys, "retention", "verify")[0] == 0


def test_hold_placed_during_an_erase_stops_it(target: Target, tmp_path: pathlib.Path,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The hold check and the erasure event are not one transaction: an event that lands in between
    (here: a hold placed right after the erase read the ledger) makes the erase stop, changing nothing."""
    from sidecar.daemon import _stores

    fill(target, tmp_path)
    cls = _stores.ElasticRecords if isinstance(target, EsTarget) else _stores.EmbeddedRecords
    real = cls.matching

    def matching_then_hold(self: Any, field: str, value: str) -> Any:
        found = real(self, field, value)
        monkeypatch.setattr(cls, "matching", real)
        assert cli.main(["hold", "add", "--user", "user-1", "--reason", "meanwhile"]) == 0
        return found

    monkeypatch.setattr(cls, "matching", matching_then_hold)
    before = dict(all_records(target))
    rc, _, err = run(capsys, "erase", "--user", "user-1", "--reason", "GDPR")
    placed, stopped = err.strip().splitlines()  # the hold's own line, then the erase's one line
    assert rc == 1 and placed.startswith("hold ") and "ledger changed" in stopped
    assert dict(all_records(target)) == before
    assert [e["sidecar.event.kind"] for e in events(target)] == ["hold"]
    rc, _, err = run(capsys, "erase", "--user", "user-1", "--reason", "GDPR")
    assert rc == 1 and "legal hold" in err
