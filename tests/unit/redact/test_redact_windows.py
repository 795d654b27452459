"""Number windows (sidecar/redact/_windows.py): scanning them finds exactly what scanning the text finds."""

from __future__ import annotations

import random

import pytest
from sidecar_testing import bench_corpus

from sidecar.redact import Redactor
from sidecar.redact._windows import REACH, SEPARATOR, NumericView, numeric_view

pytest.importorskip("faker")
pytest.importorskip("stdnum")

corpus = bench_corpus()
KEY = b"windows-test-key-0123456789abcdef"


def _pair(detect_ip: bool) -> tuple[Redactor, Redactor]:
    windowed = Redactor(KEY, detect_ip=detect_ip)
    whole = Redactor(KEY, detect_ip=detect_ip)
    whole._scanner.windowed = False  # every numeric rule over the whole text: the reference
    return windowed, whole


def _assert_same(texts: list[str], detect_ip: bool) -> int:
    windowed, whole = _pair(detect_ip)
    found = 0
    for text in texts:
        expected = whole.scan(text)
        assert windowed.scan(text) == expected, text
        found += len(expected)
    return found


# --- the view itself ---------------------------------------------------------------------------


def test_no_run_of_seven_means_nothing_to_scan() -> None:
    assert numeric_view("no numbers here") is None
    assert numeric_view("v1.2 at 12:30 for ¥99") is None  # runs shorter than seven characters
    assert numeric_view("") is None


def test_windows_hold_the_run_its_neighbours_and_context() -> None:
    text = "订单 call (555) 123-4567 x89 now, IBAN GB82 WEST 1234 5698 7654 32 ok"
    view = numeric_view(text)
    assert isinstance(view, NumericView)
    parts = view.text.split(SEPARATOR)
    assert any("(555) 123-4567 x89" in p for p in parts)  # the '(' before and the extension after
    assert any("GB82 WEST 1234 5698 7654 32" in p for p in parts)  # upper-case neighbours on the left
    assert "call" not in view.text and "订单" not in view.text


def test_offsets_map_back_to_the_text() -> None:
    text = "a" * 50 + " 4111 1111 1111 1111 " + "b" * 50 + " 110105194912310021 " + "c" * 9
    view = numeric_view(text)
    assert isinstance(view, NumericView)
    for needle in ("4111 1111 1111 1111", "110105194912310021"):
        pos = view.text.index(needle)
        assert text[view.to_text(pos) : view.to_text(pos) + len(needle)] == needle


def test_long_upper_case_stretch_falls_back_to_the_whole_text() -> None:
    text = "X" * (REACH + 10) + "1234567 tail"
    assert numeric_view(text) == text
    windowed, whole = _pair(False)
    assert windowed.scan(text) == whole.scan(text)


def test_matches_never_straddle_two_windows() -> None:
    # two runs far apart: a match would need characters from both, so the separator must stop it
    text = "1234567" + "z" * 40 + "8901234"
    view = numeric_view(text)
    assert isinstance(view, NumericView)
    assert view.text.count(SEPARATOR) == 1


# --- same findings as the whole-text scan ---------------------------------------------------------


@pytest.mark.parametrize("detect_ip", [False, True])
def test_same_findings_on_the_labelled_corpus(detect_ip: bool) -> None:
    samples = corpus.dirty_samples(1500)
    texts = [s.text for s in samples] + corpus.dirty_json_bodies(samples[:300]) + corpus.clean_samples(500)
    assert _assert_same(texts, detect_ip) > 1000  # the corpus really exercises the numeric rules


@pytest.mark.parametrize("detect_ip", [False, True])
def test_same_findings_on_long_clean_text(detect_ip: bool) -> None:
    text = corpus.long_clean_text(300_000)
    _assert_same([text] + [text[i : i + 4000] for i in range(0, len(text), 4000)], detect_ip)


def _values(g: object, rng: random.Random) -> list[str]:
    makers = ["card", "cn_id", "us_ssn", "iban", "cn_uscc", "phone", "ip"]
    out = [getattr(g, rng.choice(makers))() for _ in range(3)]
    # shapes the corpus writes rarely: extensions, brackets, a lower-case x, country prefixes, glued letters
    extra = [
        "(415) 555-2671 ext. 12", "+1 (415) 555-2671", "415.555.2671x9", "0086 138 0013 8000", "(+86) 13800138000",
        "11010519491231002x", "1101051949123100X2", "NL91ABNA0417164300", "N1350100M000100Y4", "001-415-555-2671",
        "4111-1111-1111-1111", "180012345678901", "+4915123456789", "10.0.0.1", "123-45-6789", "123 45 6789",
    ]
    out.append(rng.choice(extra))
    return out


_GLUE = [" ", "", "-", ".", ",", "(", ")", "+", "#", "x", "ext ", "ABC", "Q", "a", "z", "订单", "：", "\n", "  ", "=",
         "0", "12", " 9 ", "/", "IBAN ", "DE", "tel:", "-0"]  # fmt: skip


@pytest.mark.parametrize("detect_ip", [False, True])
def test_same_findings_on_random_glue(detect_ip: bool) -> None:
    """Planted numbers glued to each other and to letters, digits and separators in every way."""
    rng = random.Random(20261125)
    g = corpus._Gen(7, strict_phones=False)
    texts = []
    for _ in range(3000):
        pieces = _values(g, rng)
        rng.shuffle(pieces)
        text = rng.choice(_GLUE)
        for piece in pieces:
            text += piece + rng.choice(_GLUE)
        texts.append(text)
    assert _assert_same(texts, detect_ip) > 3000


def test_same_findings_on_digit_soup() -> None:
    """Random strings of digits, separators and letters: candidates everywhere, mostly invalid."""
    rng = random.Random(7)
    alphabet = "0123456789" * 6 + " -.()+#/,xXeAZN订"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(5, 300))) for _ in range(3000)]
    _assert_same(texts, detect_ip=True)


def test_runs_longer_than_the_run_pattern_bound_still_give_one_window() -> None:
    text = "4111 1111 1111 1111 " * 400 + "(415) 555-2671"
    view = numeric_view(text)
    assert isinstance(view, NumericView)
    assert SEPARATOR not in view.text
    windowed, whole = _pair(False)
    assert windowed.scan(text) == whole.scan(text)
    assert len(windowed.scan(text)) == 401
