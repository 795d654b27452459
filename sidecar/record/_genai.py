"""Record steps for the GenAI fields: the messages' character budget and the call's price."""

from __future__ import annotations

from typing import Any

from sidecar.cost import PriceBook, Usage
from sidecar.record import AuditRecord
from sidecar.redact import cut_kept

MESSAGE_FIELDS = ("system_instructions", "input_messages", "output_messages", "tool_definitions")
MESSAGE_ALIASES = {name: AuditRecord.model_fields[name].alias or name for name in MESSAGE_FIELDS}


def cut_strings(value: Any, budget: int) -> tuple[Any, bool]:
    """A copy of ``value`` whose strings hold at most ``budget`` characters in all; (copy, cut).
    A string is cut with ``cut_kept``, so a redaction placeholder is never split."""
    left = [budget]
    cut = [False]

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            if len(v) <= left[0]:
                left[0] -= len(v)
                return v
            cut[0] = True
            kept = cut_kept(v, left[0]) if left[0] > 0 else ""
            left[0] = 0
            return kept
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(value), cut[0]


def string_chars(value: Any) -> int:
    """How many characters the strings in ``value`` hold in all (``cut_strings`` cuts past its budget)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(string_chars(v) for v in value.values())
    if isinstance(value, list):
        return sum(string_chars(v) for v in value)
    return 0


def cost_fields(prices: PriceBook, f: dict[str, Any], provider: str | None) -> bool:
    """Put the call's price in USD and its breakdown into ``f``. False when the call used tokens but
    no price is known for its model (then nothing is written: no cost is better than a guess)."""
    inp, out = f.get("input_tokens"), f.get("output_tokens")
    if inp is None and out is None:
        return True
    read, write = f.get("cache_read_input_tokens") or 0, f.get("cache_creation_input_tokens") or 0
    total_in = (inp or 0) + (read + write if provider == "anthropic" else 0)  # Anthropic counts them apart
    try:
        cost = prices.cost(provider, (f.get("response_model"), f.get("request_model")),
                           Usage(total_in, out or 0, read, write))
    except Exception:
        cost = None
    if cost is None:
        return False
    f.update(cost_usd=round(cost.total, 10), cost_input_usd=round(cost.input, 10),
             cost_output_usd=round(cost.output, 10), cost_cache_read_usd=round(cost.cache_read, 10) or None,
             cost_cache_write_usd=round(cost.cache_write, 10) or None, cost_source=cost.source)
    return True
