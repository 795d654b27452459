"""Prices from the database without its per-call price engine, where that gives the same figures.

``genai_prices.calc_price`` resolves the model's price units and walks them for every call: about 85 µs,
a quarter of a 1 KB call's record build. For a model whose prices are all flat rates (no tiers), the
price of a call is an affine function of the four token counts the record holds, as long as cached
tokens are a part of the input tokens (``cache_read + cache_write <= input``). Its five coefficients are
read once per model price by asking ``calc_price``'s own engine at five points; every later call is a few
multiplications. Anything else (tiers, a price that depends on more than these counts, counts outside
that range) goes to ``calc_price`` as before. ``tests/unit/cost/test_prices.py`` compares both ways on
every model of the database.
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import Any, NamedTuple

__all__ = ["FlatPrices", "Prices", "Tokens", "database_usage", "engine_price", "fit", "is_flat"]

#: One price calculation: (input part, output part, total), USD.
Prices = tuple[Decimal, Decimal, Decimal]

_M = 1_000_000


class Tokens(NamedTuple):
    input: int  # every prompt token, cached ones included
    output: int
    cache_read: int
    cache_write: int


class _Affine(NamedTuple):
    """``price(t) = base + per_input*t.input + per_output*t.output + per_read*t.cache_read + ...``"""

    base: Prices
    per_input: Prices
    per_output: Prices
    per_read: Prices
    per_write: Prices

    def price(self, t: Tokens) -> Prices:
        return tuple(  # type: ignore[return-value]
            self.base[i] + self.per_input[i] * t.input + self.per_output[i] * t.output
            + self.per_read[i] * t.cache_read + self.per_write[i] * t.cache_write
            for i in range(3)
        )


def database_usage(t: Tokens) -> Any:
    """``t`` as the price database's usage object (zero counts left out, as it expects)."""
    from genai_prices import Usage as DbUsage

    return DbUsage(**{k: v for k, v in (("input_tokens", t.input), ("output_tokens", t.output),
                                        ("cache_read_tokens", t.cache_read),
                                        ("cache_write_tokens", t.cache_write)) if v})


def engine_price(model_price: Any, t: Tokens) -> Prices:
    """The database engine's answer for ``t`` under one model price (the reference)."""
    got = model_price.calc_price(database_usage(t))
    return got["input_price"], got["output_price"], got["total_price"]


def is_flat(model_price: Any) -> bool:
    """Every price of this model price is a plain rate (no tiers, no other kind of value)."""
    values = [v for v in vars(model_price).values() if v is not None]
    return bool(values) and all(isinstance(v, Decimal) for v in values)


def _minus(a: Prices, b: Prices) -> Prices:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def _per_token(a: Prices, b: Prices) -> Prices:
    return tuple(x / _M for x in _minus(a, b))  # type: ignore[return-value]


def fit(model_price: Any) -> _Affine:
    """The coefficients, from the engine's answers at zero and at a million tokens of each kind."""
    zero = engine_price(model_price, Tokens(0, 0, 0, 0))
    one_input = engine_price(model_price, Tokens(_M, 0, 0, 0))
    return _Affine(
        base=zero,
        per_input=_per_token(one_input, zero),
        per_output=_per_token(engine_price(model_price, Tokens(_M, _M, 0, 0)), one_input),
        per_read=_per_token(engine_price(model_price, Tokens(_M, 0, _M, 0)), one_input),
        per_write=_per_token(engine_price(model_price, Tokens(_M, 0, 0, _M)), one_input),
    )


class FlatPrices:
    """Per-model-price coefficients, fitted on first use. Thread-safe; bounded by the database's size."""

    def __init__(self) -> None:
        self._fitted: dict[int, tuple[Any, _Affine | None]] = {}
        self._lock = threading.Lock()

    def price(self, provider_id: str, model: str, t: Tokens) -> Prices | None:
        """The call's price from the fitted coefficients, or None where only ``calc_price`` knows it
        (then the caller asks it). LookupError for a model the database does not know."""
        from genai_prices import data_snapshot

        if t.cache_read + t.cache_write > t.input or provider_id == "groq":  # groq: billed-seconds rules
            return None
        _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
        affine = self._affine(info.get_prices(dt.datetime.now(tz=dt.timezone.utc)))
        return affine.price(t) if affine is not None else None

    def _affine(self, model_price: Any) -> _Affine | None:
        entry = self._fitted.get(id(model_price))
        if entry is not None and entry[0] is model_price:
            return entry[1]
        affine = fit(model_price) if is_flat(model_price) else None
        with self._lock:  # the model price is kept with its fit, so its id cannot be reused meanwhile
            self._fitted[id(model_price)] = (model_price, affine)
        return affine

