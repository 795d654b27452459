"""Prices: the operator's file first, then genai-prices; an unknown model gets no cost, never a guess."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
from capture_factory import builder, capture

from sidecar.cost import PriceBook, PricesFileError, database_version
from sidecar.cost._book import Usage


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
