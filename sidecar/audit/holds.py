"""Legal holds: which records a hold keeps.

A hold (a signed ``hold`` event in the ledger, see ledger.py) names any of: a user, a conversation,
a time range (``since`` inclusive, ``until`` exclusive) and a record id; a record is held when it
matches every criterion the hold names. Held records outlive retention and cannot be erased until
every hold on them is released.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CRITERIA = {"user": "user.id", "conversation": "gen_ai.conversation.id", "record": "event.id"}
PREFIX = "sidecar.hold."


def criteria(hold: dict[str, Any]) -> dict[str, str]:
    """The criteria a hold event names: user / conversation / record / since / until."""
    return {k: str(hold[PREFIX + k]) for k in (*CRITERIA, "since", "until") if hold.get(PREFIX + k)}


def holds_doc(hold: dict[str, Any], doc: dict[str, Any]) -> bool:
    c = criteria(hold)
    if not c:
        return False  # a hold with no criterion holds nothing (refused when placed)
    ts = str(doc.get("@timestamp", ""))
    if "since" in c and ts < c["since"]:
        return False
    if "until" in c and ts >= c["until"]:
        return False
    return all(doc.get(field) == c[name] for name, field in CRITERIA.items() if name in c)


def holding(holds: Iterable[dict[str, Any]], doc: dict[str, Any]) -> list[str]:
    """Ids of the holds that keep ``doc``."""
    return [str(h.get(PREFIX + "id")) for h in holds if holds_doc(h, doc)]


def describe(hold: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in criteria(hold).items())


def sql_clause(holds: Iterable[dict[str, Any]]) -> tuple[str, list[str]]:
    """A SQL condition on the embedded store's ``records`` row (column ``doc``) true for held records,
    and its parameters; ``("0", [])`` with no hold."""
    ors, args = [], []
    for h in holds:
        c = criteria(h)
        if not c:
            continue
        ands = []
        for name, field in CRITERIA.items():
            if name in c:
                ands.append(f"json_extract(doc, '$.\"{field}\"') = ?")
                args.append(c[name])
        for name, op in (("since", ">="), ("until", "<")):
            if name in c:
                ands.append(f"json_extract(doc, '$.\"@timestamp\"') {op} ?")
                args.append(c[name])
        ors.append("(" + " AND ".join(ands) + ")")
    return ("(" + " OR ".join(ors) + ")" if ors else "0"), args


def es_query(holds: Iterable[dict[str, Any]], mapped: set[str]) -> dict[str, Any] | None:
    """An Elasticsearch query matching at least the held documents (criteria on fields not in ``mapped``
    are left to :func:`holds_doc` on the hits); None with no hold."""
    should = []
    for h in holds:
        c = criteria(h)
        if not c:
            continue
        must: list[dict[str, Any]] = [{"term": {field: c[name]}} for name, field in CRITERIA.items()
                                      if name in c and field in mapped]
        bounds = {op: c[name] for name, op in (("since", "gte"), ("until", "lt")) if name in c}
        if bounds:
            must.append({"range": {"@timestamp": bounds}})
        should.append({"bool": {"filter": must}})
    return {"bool": {"should": should, "minimum_should_match": 1}} if should else None
