"""A secret next to another number or code: the candidate the validator rejects is looked inside.

Generated cards, IBANs, SSNs, phones and Chinese ids, each written right after (and before) the
kinds of numbers and codes a text holds next to them, must leave no digit run of theirs in the
redacted text on any scan path, and every path must find the same spans.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from redaction_paths import scan_paths

from sidecar.redact import VALIDATORS, Redactor, Rule
from sidecar.redact._validators import card_ok, iban_ok, luhn_ok

KEY = b"retry-test-key-0123456789abcdef0123"


def _paths(**kwargs: object) -> dict[str, Redactor]:
    return scan_paths(KEY, **kwargs)


PATHS = _paths()


def _card(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


def _iban(country: str, bban: str) -> str:
    return next(f"{country}{c:02d}{bban}" for c in range(100) if iban_ok(f"{country}{c:02d}{bban}"))


def _spaced(value: str, sep: str = " ") -> str:
    return sep.join(value[i : i + 4] for i in range(0, len(value), 4))


_RNG = random.Random(7)
_CARDS = [_card(p, n, _RNG) for p, n in (("4", 16), ("51", 16), ("34", 15), ("6011", 16), ("35", 19), ("4", 13))]
_IBANS = [
    _iban("DE", "370400440532013000"),
    _iban("BE", "539007547034"),
    _iban("GB", "WEST12345698765432"),
    _iban("FR", "20041010050500013M02606"),
    _iban("GB", "WEST12AB34CD56EF78"),
]
SECRETS = [
    *_CARDS,
    *(_spaced(c) for c in _CARDS),
    *(_spaced(c, "-") for c in _CARDS),
    *_IBANS,
    *(_spaced(i) for i in _IBANS),
    "123-45-6789",
    "123 45 6789",
    "415-555-2671",
    "(415) 555-2671",
    "+442071838750",
    "+86 138 1234 5678",
    "11010519491231002X",
    "91350100M000100Y43",
]
# what sits next to a secret in real text: years, order numbers, codes, phones, amounts
NEIGHBOURS = [
    "2024",
    "3456",
    "12",
    "7",
    "AB12",
    "GB12",
    "ZZ99",
    "415-555-2671",
    "4111",
    "2024-01-02",
    "1 234",
    "3.50",
    "No 5",
    "555 1234",
    "DE89",
    "0000 0000",
]


def _compact(value: str) -> str:
    return "".join(c for c in value if c.isalnum())


def _clear(redactor: Redactor, text: str, secret: str) -> bool:
    """Whether the redacted text still holds the secret (ignoring the separators)."""
    return _compact(secret) in _compact(redactor.redact_text(text)[0])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    secret=st.sampled_from(SECRETS),
    before=st.sampled_from(NEIGHBOURS),
    after=st.sampled_from(["", *NEIGHBOURS]),
    sep=st.sampled_from([" ", ", ", ": ", " - ", "/"]),
    pad=st.sampled_from([0, 1100]),
)
def test_a_secret_between_other_numbers_is_masked_on_every_path(
    secret: str, before: str, after: str, sep: str, pad: int
) -> None:
    # by design a spaced SSN followed by another spaced number group is not one (``123 45 6789 2024``)
    assume(not (secret == "123 45 6789" and sep == " " and after[:1].isdigit()))
    text = "x" * pad + f"ref {before}{sep}{secret}" + (f"{sep}{after}" if after else "") + " ok"
    found = {name: r.scan(text) for name, r in PATHS.items()}
    assert [name for name, r in PATHS.items() if _clear(r, text, secret)] == [], text
    assert all(f == found["whole"] for f in found.values()), (text, found)


@pytest.mark.parametrize(
    "text",
    ["BE68 5390 0754 7034 1234 ok", "pay BE68 5390 0754 7034 0000", "iban GB82 WEST 1234 5698 7654 32 9999 please"],
)
def test_an_iban_followed_by_another_group_is_masked(text: str) -> None:
    iban = text.split(" ")[1 if text[0].islower() else 0]
    for name, redactor in PATHS.items():
        out, summary = redactor.redact_text(text)
        assert iban not in out and summary.get("IBAN") == 1, (name, out)


def test_an_iban_is_masked_after_a_code_that_looks_like_one_without_numbers_nearby() -> None:
    iban = _iban("GB", "WEST12AB34CD56EF78")
    for text in (f"ref AB12 {iban}", f"{iban}", "y" * 1500 + f" GB12 {_spaced(iban)} " + "z" * 900):
        for name, redactor in PATHS.items():
            assert _compact(iban) not in _compact(redactor.redact_text(text)[0]), (name, text[-80:])


def test_a_user_rule_with_a_validator_is_looked_inside_too() -> None:
    rule = Rule("ACCOUNT", r"(?<![0-9])[0-9][0-9 ]{11,30}[0-9](?![0-9])", VALIDATORS["luhn"])
    redactor = Redactor(KEY, extra_rules=[rule])
    out, summary = redactor.redact_text("ref 2024 7992 7398 713 done")
    assert "7992 7398 713" not in out and summary.get("ACCOUNT") == 1, out


def test_a_rejected_candidate_still_masks_nothing_that_is_no_secret() -> None:
    # the retry must not turn numbers into findings: none of these holds a valid card or IBAN
    for text in (
        "paid 2024 4111 1111 1111 1112",
        "order 1234 5678 9012 3456 7890",
        "ref AB12 CD34 EF56 GH78 IJ",
        "0.4111111111111111 and 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2",
    ):
        assert PATHS["re2"].scan(text) == [], text
    assert not card_ok("2024 4111 1111 1111")
