"""`sidecar audit verify` against someone with write access, on the embedded store and on a real Elasticsearch.

Every attack of the issue is run against both stores; detection is required every time."""

from __future__ import annotations

import datetime as dt
import pathlib
from typing import Any

import pytest
from audit_testing import KEY, RING, EsTarget, SqliteTarget, Target, kinds, produce, rechain_unkeyed, ship

from sidecar.audit import IntegrityKey, KeyRing, head_of, sign
from sidecar.redact import derive

PRODUCERS = (("prodA", 50), ("prodB", 40), ("prodC", 30))  # shipped in this order: C's digests are the newest


@pytest.fixture(params=["embedded", "elasticsearch"])
def target(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Target:
    if request.param == "embedded":
        t: Target = SqliteTarget(tmp_path / "audit.db")
    else:
        t = EsTarget(request.getfixturevalue("es"), request.getfixturevalue("elasticsearch_url"),
                     request.getfixturevalue("es_prefix"))
    spool = tmp_path / "spool"
    for producer, n in PRODUCERS:
        produce(spool, producer, n)
    ship(spool, t.sink)
    return t


def digests_of(t: Target, producer: str) -> list[dict[str, Any]]:
    return sorted((g for g in t.digests() if g.get("sidecar.producer.id") == producer),
                  key=lambda g: g["sidecar.digest.seq"])


def test_intact_store_verifies(target: Target) -> None:
    report = target.verify()
    assert report.ok, report.findings
    assert report.records == 120 and report.covered == 120 and report.chains == 1
    assert report.digests == len(target.digests()) >= 7  # a start marker and several segments per producer


def test_deleted_record(target: Target) -> None:
    target.delete_record("prodA-20")
    report = target.verify()
    assert (report.findings[0].kind, report.findings[0].where) == ("deleted", "prodA-21")


def test_altered_record(target: Target) -> None:
    target.put_record("prodB-7", dict(target.record("prodB-7"), **{"sidecar.request.content": "edited"}))
    assert [(f.kind, f.where) for f in target.verify().findings][:1] == [("altered", "prodB-7")]


def test_edit_and_unkeyed_rechain_with_every_digest_deleted(target: Target) -> None:
    """The issue's first attack: delete all digests, edit content and status, recompute the chain."""
    for g in target.digests():
        target.delete_digest(g["sidecar.digest.id"])
    doc = target.record("prodA-10")
    edited = dict(doc, **{"sidecar.request.content": "nothing to see", "http.response.status_code": 200})
    target.put_record("prodA-10", rechain_unkeyed(edited, doc["sidecar.chain.prev"]))
    found = kinds(target.verify())
    assert {"altered", "no_digests", "undigested"} <= found


def test_store_without_digests_is_rejected(target: Target) -> None:
    for g in target.digests():
        target.delete_digest(g["sidecar.digest.id"])
    report = target.verify()
    assert not report.ok and {"no_digests", "undigested"} <= kinds(report)


def test_removed_producer_breaks_the_sidecar_chain(target: Target) -> None:
    """All of prodB's records and digests go: prodA and prodC still verify on their own, the chain does not."""
    for rid, _ in target.records():
        if rid.startswith("prodB-"):
            target.delete_record(rid)
    for g in digests_of(target, "prodB"):
        target.delete_digest(g["sidecar.digest.id"])
    report = target.verify()
    assert "missing_digest" in kinds(report), report.findings


def test_deleted_digest(target: Target) -> None:
    gone = digests_of(target, "prodA")[1]
    target.delete_digest(gone["sidecar.digest.id"])
    found = kinds(target.verify())
    assert {"missing_digest", "undigested"} <= found


def test_deleted_segment_with_its_digest(target: Target) -> None:
    g = digests_of(target, "prodB")[1]
    target.delete_digest(g["sidecar.digest.id"])
    for seq in range(g["sidecar.digest.first_sequence"], g["sidecar.digest.last_sequence"] + 1):
        target.delete_record(f"prodB-{seq}")
    assert {"deleted", "missing_digest"} <= kinds(target.verify())


def test_forged_digest(target: Target) -> None:
    g = dict(digests_of(target, "prodC")[0], **{"sidecar.digest.count": 1})
    target.put_digest(sign(g, IntegrityKey(b"not the key")))
    found = kinds(target.verify())
    assert "forged_digest" in found and "missing_digest" in found


def test_reordered_and_inserted(target: Target) -> None:
    a, b = target.record("prodA-30"), target.record("prodA-31")
    target.put_record("prodA-30", b)
    target.put_record("prodA-31", a)
    assert {f.where for f in target.verify().findings if f.kind == "reordered"} >= {"prodA-30", "prodA-31"}
    target.put_record("prodA-30", a)
    target.put_record("prodA-31", b)
    planted = dict(a, **{"event.id": "prodA-30b", "gen_ai.request.model": "planted"})
    target.put_record("prodA-30b", planted)
    assert not target.verify().ok


def test_cut_tail_needs_the_anchor(target: Target) -> None:
    """Removing the newest producer's records and digests is invisible without an anchor; with one, caught."""
    anchor = head_of(max(target.digests(), key=lambda g: g["sidecar.digest.seq"]))
    for rid, _ in target.records():
        if rid.startswith("prodC-"):
            target.delete_record(rid)
    for g in digests_of(target, "prodC"):
        target.delete_digest(g["sidecar.digest.id"])
    assert target.verify().ok  # documented: undetectable without an exported head
    report = target.verify(anchors=[anchor])
    assert [f.kind for f in report.findings] == ["missing_digest"] and report.anchors == 1


def test_anchor_of_a_replaced_digest(target: Target) -> None:
    newest = max(target.digests(), key=lambda g: g["sidecar.digest.seq"])
    anchor = dict(head_of(newest), **{"sidecar.digest.hash": "0" * 64})
    assert "anchor_mismatch" in kinds(target.verify(anchors=[anchor]))


def test_wrong_key_fails_everything(target: Target) -> None:
    found = kinds(target.verify(keys=KeyRing([IntegrityKey(b"another key")])))
    assert {"unknown_key", "forged_digest"} <= found


def test_key_rotation_needs_the_ring(tmp_path: pathlib.Path) -> None:
    """Records and digests made under the old key, then the new one: the ring verifies both."""
    new = IntegrityKey(derive(b"the-new-secret-0123456789", "integrity"))
    t = SqliteTarget(tmp_path / "audit.db")
    spool, state = tmp_path / "spool", tmp_path / "state"
    produce(spool, "old", 30)
    ship(spool, t.sink, state=state)
    produce(spool, "new", 30, key=new)
    ship(spool, t.sink, key=new, state=state)
    assert {g["sidecar.digest.key_id"] for g in t.digests()} == {KEY.key_id, new.key_id}
    assert t.verify(keys=KeyRing([new, KEY])).ok
    assert {"unknown_key", "forged_digest"} <= kinds(t.verify(keys=KeyRing([new])))


@pytest.mark.parametrize("damage", ["missing", "unreadable"])
def test_lost_checkpoint_is_one_honest_notice(target: Target, tmp_path: pathlib.Path, damage: str) -> None:
    spool, state = tmp_path / "spool", tmp_path / "state"
    checkpoint = state / "checkpoint.json"
    if damage == "missing":
        checkpoint.unlink()
    else:
        checkpoint.write_text("{not json")
    produce(spool, "prodD", 20)
    shipper = ship(spool, target.sink)
    assert shipper.stats.digests >= 1
    produce(spool, "prodE", 20)
    ship(spool, target.sink)  # a later run: no second reset
    report = target.verify()
    assert report.ok, report.findings
    assert len(report.notices) == 1 and "checkpoint" in report.notices[0]
    markers = [g for g in target.digests() if g["sidecar.digest.kind"] == "reset"]
    assert len(markers) == 1 and markers[0]["sidecar.digest.prev"]  # continued from the store's newest digest


def test_retention_cut_is_not_tampering(tmp_path: pathlib.Path) -> None:
    old = dt.datetime.now(tz=dt.timezone.utc) - dt.timedelta(days=95)
    for name, start in (("old", old), ("young", None)):
        t = SqliteTarget(tmp_path / f"{name}.db")
        spool = tmp_path / name
        produce(spool, "prodA", 60, start=start)
        ship(spool, t.sink, state=tmp_path / f"{name}-state")
        first = digests_of(t, "prodA")[0]
        starts = [g for g in t.digests() if g["sidecar.digest.kind"] == "start"]
        for g in [first, *starts]:
            if name == "old":  # retention deletes the oldest days: digests dated then go with them
                t.delete_digest(g["sidecar.digest.id"])
        if name == "young":
            t.delete_digest(first["sidecar.digest.id"])
        for seq in range(1, first["sidecar.digest.last_sequence"] + 1):
            t.delete_record(f"prodA-{seq}")
        report = t.verify()
        if name == "old":
            assert report.ok, report.findings
        else:
            assert {"deleted", "missing_digest"} <= kinds(report)


def test_keys_kept_apart() -> None:
    secret = b"one-secret-for-both-roles"
    pseudonym, integrity = derive(secret, "pseudonym"), derive(secret, "integrity")
    assert pseudonym != integrity and secret not in (pseudonym, integrity)
    k = IntegrityKey(integrity)
    assert len({k.chain, k.fields, k.signing, integrity}) == 4
    assert KEY.key_id != IntegrityKey(pseudonym).key_id and RING.get(KEY.key_id) is KEY


def test_reset_that_finds_nothing_starts_a_new_chain(tmp_path: pathlib.Path) -> None:
    """Checkpoint lost and the chain's digests not in this store (a new store): a new chain, named after the old."""
    first, second = SqliteTarget(tmp_path / "first.db"), SqliteTarget(tmp_path / "second.db")
    spool = tmp_path / "spool"
    produce(spool, "prodA", 20)
    ship(spool, first.sink)
    (tmp_path / "state" / "checkpoint.json").unlink()
    produce(spool, "prodB", 20)
    ship(spool, second.sink)
    report = second.verify()
    assert report.ok, report.findings
    assert len(report.notices) == 1 and "cannot be linked" in report.notices[0]
    marker = next(g for g in second.digests() if g["sidecar.digest.kind"] == "reset")
    old_chain = first.digests()[0]["sidecar.chain.id"]
    assert marker["sidecar.digest.reset_of"] == old_chain != marker["sidecar.chain.id"]


def test_long_lived_producer_across_a_lost_checkpoint(tmp_path: pathlib.Path, target: Target) -> None:
    """The issue's case: one producer keeps writing while the sidecar loses its checkpoint mid-segment."""
    import datetime as _dt

    from prometheus_client import CollectorRegistry

    from sidecar.record import AuditRecord
    from sidecar.spool import SpoolConfig, SpoolWriter
    from sidecar.telemetry import Metrics

    spool = tmp_path / "spool"
    start = _dt.datetime.now(tz=_dt.timezone.utc) - _dt.timedelta(hours=1)

    def process(item: int, seq: int) -> bytes:
        ts = (start + _dt.timedelta(seconds=item)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return AuditRecord(event_id=f"long-{seq}", timestamp=ts, producer_id="long", sequence=seq,
                           provider="openai", status_code=200).to_json().encode()

    writer = SpoolWriter(SpoolConfig(spool, segment_bytes=4000, fsync="never", chain_key=KEY), "long", process,
                         Metrics(CollectorRegistry()))
    for i in range(25):
        writer.submit(i)
    assert writer.flush(10)
    ship(spool, target.sink)  # ships the sealed segments and part of the open one
    (tmp_path / "state" / "checkpoint.json").unlink()
    for i in range(25, 60):
        writer.submit(i)
    assert writer.flush(10)
    writer.close()
    ship(spool, target.sink)
    report = target.verify()
    assert report.ok, report.findings
    assert len(report.notices) == 1
    assert sum(1 for i, _ in target.records() if i.startswith("long-")) == 60


def test_field_digests_leave_room_for_erasure(target: Target) -> None:
    """A content field removed with its keyed digest kept in `sidecar.erased` still verifies; a stub with any
    other digest, or an erased field that was never there, does not."""
    from sidecar.audit import field_digest

    doc = target.record("prodA-5")
    name = "sidecar.request.content"
    erased = {k: v for k, v in doc.items() if k != name}
    erased["sidecar.erased"] = {name: field_digest(KEY, name, doc[name])}
    target.put_record("prodA-5", erased)
    # Authorised by a signed erasure event it verifies; without one it is an unsigned erasure.
    from sidecar.audit.ledger import make_event

    event = make_event("erasure", {"sidecar.event.records": ["prodA-5"], "sidecar.event.fields": [name]}, None,
                       KEY, operator="test", reason="test")
    report = target.verify(events=[event])
    assert report.ok and report.erased == 1, report.findings
    assert [(f.kind, f.where) for f in target.verify().findings] == [("unsigned_erasure", "prodA-5")]
    erased["sidecar.erased"] = {name: field_digest(KEY, name, "something else")}
    target.put_record("prodA-5", erased)
    assert [(f.kind, f.where) for f in target.verify().findings][:1] == [("altered", "prodA-5")]
    erased["sidecar.erased"] = {name: "0" * 64}
    target.put_record("prodA-5", erased)
    assert [(f.kind, f.where) for f in target.verify().findings][:1] == [("altered", "prodA-5")]
