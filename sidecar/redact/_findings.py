"""Findings: the spans a text's redaction replaces, made from the rules' overlapping detections."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Detection", "Finding", "Summary", "count", "merge"]

#: Counts of findings by type.
Summary = dict[str, int]
#: One rule's match: ``(start, end, priority, type)``; a lower priority number wins a tie.
Detection = tuple[int, int, int, str]


class Finding(NamedTuple):
    """One span that will be replaced: ``text[start:end]`` becomes a ``<type:hmac8>`` placeholder."""

    start: int
    end: int
    type: str


def merge(spans: list[Detection]) -> list[Finding]:
    """Findings from ``(start, end, priority, type)`` detections, overlapping ones made one."""
    if not spans:
        return []
    if len(spans) == 1:
        s, e, _, name = spans[0]
        return [Finding(s, e, name)]
    # Overlapping detections are merged into one span (so no part of either leaks), typed by
    # the earliest rule among them (the rule list is in precedence order), then the longest.
    spans.sort()
    out: list[Finding] = []
    cur_s, cur_e, _, _ = spans[0]
    best = spans[0]
    for span in spans[1:]:
        s, e = span[0], span[1]
        if s < cur_e:
            cur_e = max(cur_e, e)
            if (-span[2], e - s) > (-best[2], best[1] - best[0]):
                best = span
            continue
        out.append(Finding(cur_s, cur_e, best[3]))
        cur_s, cur_e, best = s, e, span
    out.append(Finding(cur_s, cur_e, best[3]))
    return out



def count(summary: Summary, types: tuple[str, ...] | list[str]) -> None:
    """Add one to ``summary`` for each type in ``types``."""
    for type_name in types:
        summary[type_name] = summary.get(type_name, 0) + 1
