"""Prices per million tokens, from a user file (negotiated prices, self-hosted models) or from
pydantic's ``genai-prices`` package (MIT, bundled data: no network; optional ``cost`` extra).

The prices file is JSON::

    {"models": [{"provider": "openai", "model": "gpt-4o", "input": 2.5, "output": 10,
                 "cache_read": 1.25, "cache_write": 3.75}]}

``model`` matches the response (or request) model exactly, or by prefix when it ends in ``*``;
``provider`` is a ``gen_ai.provider.name`` or ``*``. Prices are USD per million tokens.
"""

from __future__ import annotations

import json
import math
import pathlib
import threading
from dataclasses import dataclass
from typing import Any

from sidecar.cost._flat import FlatPrices, Prices, Tokens, database_usage
from sidecar.errors import ConfigError

_M = 1_000_000
# gen_ai.provider.name -> genai-prices provider id
_DB_PROVIDER = {"openai": "openai", "azure.ai.openai": "azure", "anthropic": "anthropic", "gcp.gemini": "google",
                "gcp.vertex_ai": "google", "gcp.gen_ai": "google", "aws.bedrock": "aws", "groq": "groq",
                "mistral_ai": "mistral", "deepseek": "deepseek", "x_ai": "x-ai", "perplexity": "perplexity"}


class PricesFileError(ConfigError):
    """The prices file cannot be read or has a wrong shape (the message names the problem)."""


@dataclass(frozen=True)
class Cost:
    total: float
    input: float
    output: float
    cache_read: float
    cache_write: float
    source: str


@dataclass(frozen=True)
class _Price:
    provider: str
    model: str
    input: float
    output: float
    cache_read: float | None
    cache_write: float | None

    def matches(self, provider: str | None, model: str) -> bool:
        if self.provider not in ("*", provider):
            return False
        return model.startswith(self.model[:-1]) if self.model.endswith("*") else model == self.model


def _price(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise PricesFileError(f"{where}: a price is a number >= 0 (USD per million tokens)")
    return float(v)


def load_prices_file(path: pathlib.Path) -> list[_Price]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PricesFileError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    except ValueError:
        raise PricesFileError(f"{path} is not JSON") from None
    rows = data.get("models") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise PricesFileError(f'{path}: expected {{"models": [...]}}')
    out = []
    for n, row in enumerate(rows):
        where = f"{path} models[{n}]"
        if not isinstance(row, dict) or not isinstance(row.get("model"), str) or not row["model"]:
            raise PricesFileError(f"{where}: needs a model name")
        opt = {k: (_price(row[k], where) if row.get(k) is not None else None) for k in ("cache_read", "cache_write")}
        out.append(_Price(str(row.get("provider") or "*"), row["model"], _price(row.get("input"), where),
                          _price(row.get("output"), where), opt["cache_read"], opt["cache_write"]))
    return out


def database_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("genai-prices")
    except Exception:
        return None


@dataclass(frozen=True)
class Usage:
    """Token counts as the record holds them: ``input`` is every prompt token, cached ones included."""

    input: int
    output: int
    cache_read: int
    cache_write: int


class PriceBook:
    def __init__(self, prices_file: pathlib.Path | None = None, use_database: bool = True) -> None:
        self._rows = load_prices_file(prices_file) if prices_file is not None else []
        self._db_version = database_version() if use_database else None
        self._db_misses: set[tuple[str | None, str]] = set()
        self._lock = threading.Lock()
        self._flat = FlatPrices()

    def cost(self, provider: str | None, models: tuple[str | None, ...], usage: Usage) -> Cost | None:
        """The call's cost from the first of ``models`` (the response's, then the request's) with a
        known price; None when none has one."""
        for model in dict.fromkeys(m for m in models if m):
            found = self._cost(provider, model, usage)
            if found is not None:
                return found
        return None

    def _cost(self, provider: str | None, model: str, usage: Usage) -> Cost | None:
        for row in self._rows:
            if row.matches(provider, model):
                return _from_row(row, usage)
        if self._db_version is None or (provider, model) in self._db_misses:
            return None
        try:
            return self._from_database(provider, model, usage)
        except Exception:  # LookupError for an unknown model; anything else: no cost rather than a guess
            with self._lock:
                if len(self._db_misses) > 10_000:
                    self._db_misses.clear()
                self._db_misses.add((provider, model))
            return None

    def _from_database(self, provider: str | None, model: str, usage: Usage) -> Cost:
        pid = _DB_PROVIDER.get(provider or "")
        if pid is None:
            raise LookupError(provider)
        whole = self._database_price(pid, model, Tokens(usage.input, usage.output, usage.cache_read,
                                                        usage.cache_write))
        read = float(self._database_price(pid, model, Tokens(usage.cache_read, 0, usage.cache_read, 0))[0]) \
            if usage.cache_read else 0.0
        write = float(self._database_price(pid, model, Tokens(usage.cache_write, 0, 0, usage.cache_write))[0]) \
            if usage.cache_write else 0.0
        total = float(whole[2])
        return Cost(total, max(float(whole[0]) - read - write, 0.0), float(whole[1]), read, write,
                    f"genai-prices {self._db_version}")

    def _database_price(self, pid: str, model: str, t: Tokens) -> Prices:
        """(input, output, total) USD: the flat-rate shortcut where it applies, else the database's engine."""
        flat = self._flat.price(pid, model, t)
        if flat is not None:
            return flat
        from genai_prices import calc_price

        got = calc_price(database_usage(t), model, provider_id=pid)
        return got.input_price, got.output_price, got.total_price


def _from_row(row: _Price, u: Usage) -> Cost:
    read_price = row.cache_read if row.cache_read is not None else row.input
    write_price = row.cache_write if row.cache_write is not None else row.input
    plain = max(u.input - u.cache_read - u.cache_write, 0)
    parts = (plain * row.input / _M, u.output * row.output / _M, u.cache_read * read_price / _M,
             u.cache_write * write_price / _M)
    return Cost(sum(parts), parts[0], parts[1], parts[2], parts[3], "prices_file")
