"""The generated adversarial corpus through the redactor: every form of every value is masked."""

from __future__ import annotations

import json
import os

import pytest
from adversarial_corpus import Item, corpus, leaks
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.redact import Redactor
from sidecar.redact._bound import PLACEHOLDER

R = Redactor(b"adversarial-" + b"k" * 20)
CORPUS = corpus()


@pytest.mark.parametrize("item", CORPUS, ids=lambda i: f"{i.kind}-{i.form}-{i.lang}")
def test_every_form_is_masked_in_text(item: Item) -> None:
    out, summary = R.redact_text(item.text)
    assert not leaks(item.value, out), out
    assert summary


@pytest.mark.parametrize("item", CORPUS, ids=lambda i: f"{i.kind}-{i.form}-{i.lang}")
def test_every_form_is_masked_inside_json_strings(item: Item) -> None:
    doc = {"messages": [{"role": "tool", "content": item.text}],
           "tool_calls": [{"function": {"arguments": json.dumps({"note": item.text})}}]}
    out, _ = R.redact_json(doc)
    assert not leaks(item.value, json.dumps(out, ensure_ascii=False))


def test_fullwidth_value_hashes_like_its_ascii_form() -> None:
    assert R.redact_text("13812345678")[0] == R.redact_text("１３８１２３４５６７８")[0]


def test_json_in_json_keeps_unrelated_strings_as_written() -> None:
    raw = '{"city": "Paris",  "n": 1}'
    out, summary = R.redact_json({"arguments": raw})
    assert out == {"arguments": raw} and summary == {}


SECRETS = ["AKIAIOSFODNN7EXAMPL3", "13812345678", "someone@example.org", "4111111111111111",
           "sk-proj-" + "Ab1" * 14]


@settings(max_examples=int(os.environ.get("SIDECAR_FUZZ_EXAMPLES", "1500")), deadline=None)
@given(before=st.text(alphabet=st.characters(codec="utf-8"), max_size=120), secret=st.sampled_from(SECRETS),
       after=st.text(max_size=40), limit=st.integers(min_value=1, max_value=200),
       block=st.sampled_from(["", "-----BEGIN PRIVATE KEY-----\n" + "Q" * 300 + "\n-----END PRIVATE KEY-----",
                              "mail a@b.co " * 10]))
def test_fuzz_redact_then_cut_never_keeps_part_of_a_secret(before: str, secret: str, after: str, limit: int,
                                                             block: str) -> None:
    text = f"{block} {before} {secret} {after}"
    out, _, _ = R.redact_bounded(text, limit)
    assert len(out) <= limit
    for n in range(8, len(secret) + 1):
        assert secret[:n] not in out
    # the same text as redacting all of it and then cutting, at a place that splits no placeholder
    full = R.redact_text(text)[0]
    assert full.startswith(out)
    assert not any(m.start() < len(out) < m.end() for m in PLACEHOLDER.finditer(full))
