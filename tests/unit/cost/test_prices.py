"""Prices: the operator's file first, then genai-prices; an unknown model gets no cost, never a guess."""

from __future__ import annotations

import json
import pathlib
import random
from typing import Any

import pytest
from capture_factory import builder, capture

from sidecar.cost import PriceBook, PricesFileError, database_version
from sidecar.cost._book import _DB_PROVIDER, Usage
from sidecar.cost._flat import FlatPrices, Tokens, database_usage, is_flat


def book(tmp_path: pathlib.Path, rows: Any, use_database: bool = True) -> PriceBook:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(rows))
    return PriceBook(path, use_database=use_database)


def test_file_rows_match_exactly_or_by_prefix_and_provider(tmp_path: pathlib.Path) -> None:
    b = book(tmp_path, {"models": [{"provider": "openai", "model": "gpt-4o", "input": 2, "output": 8},
                                   {"model": "house-*", "input": 1, "output": 1, "cache_read": 0.1}]})
    c = b.cost("openai", ("gpt-4o",), Usage(1_000_000, 1_000_000, 0, 0))
    assert c is not None and c.total == 10 and c.source == "prices_file"
    assert b.cost("azure.ai.openai", ("gpt-4o",), Usage(1, 1, 0, 0)).source.startswith("genai-prices")  # type: ignore[union-attr]
    h = b.cost("ollama", ("house-7b",), Usage(1_000_000, 0, 500_000, 0))
    assert h is not None and h.input == pytest.approx(0.5) and h.cache_read == pytest.approx(0.05)


def test_database_prices_and_breakdown() -> None:
    assert database_version() is not None
    b = PriceBook()
    c = b.cost("openai", ("gpt-4o-2024-08-06", "gpt-4o"), Usage(1_000_000, 1_000_000, 400_000, 0))
    assert c is not None
    # gpt-4o list price: 2.5 input, 1.25 cached input, 10 output (USD per million tokens)
    assert c.input == pytest.approx(0.6 * 2.5) and c.cache_read == pytest.approx(0.4 * 1.25)
    assert c.output == pytest.approx(10) and c.total == pytest.approx(1.5 + 0.5 + 10)


@pytest.mark.parametrize("provider,model", [("openai", "house-model-7b"), ("ollama", "llama3"), (None, "gpt-4o"),
                                            ("openai", ""), ("openai", "<EMAIL:1234abcd>")])
def test_unknown_model_or_provider_has_no_cost(provider: str | None, model: str) -> None:
    assert PriceBook().cost(provider, (model,), Usage(10, 10, 0, 0)) is None


@pytest.mark.parametrize("rows,needle", [
    ({"models": [{"model": "x", "input": -1, "output": 1}]}, "price"),
    ({"models": [{"model": "x", "input": "1", "output": 1}]}, "price"),
    ({"models": [{"model": "x", "input": 1e400, "output": 1}]}, "not JSON"),
    ({"models": [{"input": 1, "output": 1}]}, "model name"),
    ({"rows": []}, "models"),
    ([], "models"),
])
def test_bad_files_say_what_is_wrong(tmp_path: pathlib.Path, rows: Any, needle: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(rows) if needle != "not JSON" else '{"models": [{"model": "x", "input": NaN}]')
    with pytest.raises(PricesFileError, match=needle):
        PriceBook(path)
    with pytest.raises(PricesFileError, match="cannot read"):
        PriceBook(tmp_path / "missing.json")


def test_anthropic_cache_tokens_are_added_before_pricing() -> None:
    body = json.dumps({"model": "claude-3-5-sonnet-20241022", "max_tokens": 5,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    resp = json.dumps({"id": "m", "model": "claude-3-5-sonnet-20241022", "content": [], "stop_reason": "end_turn",
                       "usage": {"input_tokens": 1000, "output_tokens": 100, "cache_read_input_tokens": 2000,
                                 "cache_creation_input_tokens": 400}}).encode()
    doc = builder().build(capture("https://api.anthropic.com/v1/messages", body=body, response=resp, status=200), 1)
    # 3 input, 0.30 cache read, 3.75 cache write, 15 output (USD per million tokens)
    assert doc["sidecar.cost.input_usd"] == pytest.approx(1000 * 3 / 1e6)
    assert doc["sidecar.cost.cache_read_usd"] == pytest.approx(2000 * 0.3 / 1e6)
    assert doc["sidecar.cost.cache_write_usd"] == pytest.approx(400 * 3.75 / 1e6)
    assert doc["sidecar.cost.usd"] == pytest.approx((3000 + 600 + 1500 + 1500) / 1e6)


def test_a_cached_answer_costs_nothing() -> None:
    body = json.dumps({"model": "gpt-4o", "messages": []}).encode()
    resp = json.dumps({"model": "gpt-4o", "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 1}})
    cap = capture(body=body, response=resp.encode(), status=200)
    cap.cache_hit = True
    doc = builder().build(cap, 1)
    assert not any(k.startswith("sidecar.cost") for k in doc)


def _database_models() -> list[tuple[str, str]]:
    from genai_prices import data_snapshot

    wanted = set(_DB_PROVIDER.values())
    return [(p.id, m.id) for p in data_snapshot.get_snapshot().providers if p.id in wanted for m in p.models]


def test_the_flat_rate_shortcut_gives_the_engines_prices_on_every_model() -> None:
    """Every model of the database the record can price, at generated token counts (cached tokens inside
    the input, and not), priced by the shortcut where it applies and by ``calc_price`` itself: equal."""
    from genai_prices import calc_price

    flat = FlatPrices()
    rng = random.Random(7)
    models = _database_models()
    assert len(models) > 100
    shortcut_used = 0
    for provider_id, model in models:
        for _ in range(3):
            tokens = Tokens(rng.randrange(0, 2_000_000), rng.randrange(0, 200_000), 0, 0)
            if rng.random() < 0.5:
                tokens = tokens._replace(cache_read=rng.randrange(0, tokens.input + 1))
                tokens = tokens._replace(cache_write=rng.randrange(0, tokens.input - tokens.cache_read + 1))
            try:
                want = calc_price(database_usage(tokens), model, provider_id=provider_id)
            except Exception:
                continue  # the engine refuses these counts for this model: the book gives no cost then
            got = flat.price(provider_id, model, tokens)
            if got is None:
                continue
            shortcut_used += 1
            for mine, theirs in zip(got, (want.input_price, want.output_price, want.total_price), strict=True):
                assert mine == pytest.approx(theirs, rel=1e-12, abs=1e-15), (provider_id, model, tokens)
    assert shortcut_used > 100  # the shortcut is what prices most calls, so this compared it


def test_tiered_prices_never_take_the_shortcut() -> None:
    """A model whose current price has tiers is priced by the engine: the shortcut declines it."""
    import datetime as dt

    from genai_prices import data_snapshot

    now = dt.datetime.now(tz=dt.timezone.utc)
    wanted = set(_DB_PROVIDER.values())
    tiered = [(p.id, m.id) for p in data_snapshot.get_snapshot().providers if p.id in wanted and p.id != "groq"
              for m in p.models if not is_flat(m.get_prices(now))]
    assert tiered, "the database has no tiered price any more: this test no longer sees that branch"
    flat = FlatPrices()
    declined = 0
    for provider_id, model in tiered:
        try:
            got = flat.price(provider_id, model, Tokens(300_000, 1_000, 0, 0))
        except LookupError:  # a model id that is not also a name it is found by
            continue
        assert got is None, (provider_id, model)
        declined += 1
    assert declined > 0
