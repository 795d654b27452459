"""Secrets hidden from a plain pattern: punctuation glued to them, invisible characters inside them,
HTML character references, odd spaces between card groups, a key broken over lines, key names
written in other forms. Generated over every secret type; the output must hold no piece of the value."""

from __future__ import annotations

import html
import string
import unicodedata

import pytest
from adversarial_corpus import INVISIBLE, ODD_SPACES, leaks
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.redact import Redactor
from sidecar.redact._bound import PLACEHOLDER

R = Redactor(b"hidden-forms-" + b"k" * 20)

SECRETS = {
    "EMAIL": "alice.secret@example.org",
    "AWS_ACCESS_KEY": "AKIAIOSFODNN7EXAMPLQ",
    "OPENAI_KEY": "sk-proj-" + "Ab3dE9xQ" * 5,
    "ANTHROPIC_KEY": "sk-ant-api03-" + "Z1" * 46 + "AA",
    "GITHUB_TOKEN": "ghp_" + "a1B2c3D4e5" * 3 + "123456",
    "GOOGLE_API_KEY": "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
    "SLACK_TOKEN": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "STRIPE_KEY": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "JWT": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "CREDIT_CARD": "4111111111111111",
    "US_SSN": "123-45-6789",
    "IBAN": "DE89370400440532013000",
    "PHONE": "+1 415 555 0132",
}
# Every ASCII punctuation character, and the full-width and CJK ones that sit next to values in Chinese text.
PUNCTUATION = string.punctuation + "，。：；（）【】「」、！？￥·"


def _leaked(value: str, out: str) -> list[str]:
    compact = value.replace(" ", "").replace("-", "") if value[0].isdigit() or value[0] == "+" else value
    return leaks(value, out) + ([compact] if compact in out.replace(" ", "").replace("-", "") else [])


@pytest.mark.parametrize("type_name", SECRETS)
@pytest.mark.parametrize("mark", PUNCTUATION, ids=lambda c: f"U+{ord(c):04X}")
def test_punctuation_before_or_after_a_secret_hides_nothing(type_name: str, mark: str) -> None:
    value = SECRETS[type_name]
    for text in (f"x {mark}{value} y", f"x {value}{mark} y", f"{mark}{value}{mark}", f"a,{value},b"):
        out, summary = R.redact_text(text)
        assert not _leaked(value, out), (text, out)
        assert summary, text


def test_csv_fields_and_punctuated_addresses_are_masked() -> None:
    out, _ = R.redact_text("name,card,exp\nalice,4111111111111111,12/27\nbob;5500000000000004;01/28")
    assert "4111" not in out and "5500" not in out
    for text in ("contact _alice@example.org or -bob@example.org", "(+carol@example.org;", "%dave@example.org",
                 "eve@example.org-", "see .frank@example.org", "SSN:-123-45-6789", "key=-sk-proj-" + "Ab3dE9xQ" * 5):
        out, summary = R.redact_text(text)
        assert "@example" not in out and "6789" not in out and "Ab3dE9xQ" not in out, out
        assert summary


def test_numbers_that_continue_a_number_stay() -> None:
    # the fractions of floats (embeddings), and a dashed number running on: not cards, not SSNs
    floats = "[0.4111111111111111, -0.4111111111111111, 1,4111111111111111e-3]"
    assert R.redact_text(floats) == (floats, {})
    assert R.redact_text("ref 12-123-45-6789 ok")[1] == {}


@settings(max_examples=300, deadline=None)
@given(type_name=st.sampled_from(sorted(SECRETS)), data=st.data())
def test_invisible_characters_inside_a_secret_hide_nothing(type_name: str, data: st.DataObject) -> None:
    value = SECRETS[type_name]
    marks = data.draw(st.lists(st.sampled_from(INVISIBLE), min_size=1, max_size=4))
    cuts = sorted(data.draw(st.lists(st.integers(1, len(value) - 1), min_size=len(marks), max_size=len(marks))))
    pieces = [value[a:b] for a, b in zip([0, *cuts], [*cuts, len(value)], strict=True)]
    written = pieces[0] + "".join(m + piece for m, piece in zip(marks, pieces[1:], strict=True))
    lead, tail = data.draw(st.sampled_from([("data: ", " end"), ("联系我", "谢谢"), ('{"v": "', '"}')]))
    out, summary = R.redact_text(lead + written + tail)
    # the placeholder covers the original characters: the invisible ones inside went with the value
    assert out.startswith(lead) and out.endswith(tail), out
    assert PLACEHOLDER.fullmatch(out[len(lead): len(out) - len(tail)]), out
    assert summary


def test_every_format_character_is_seen_through() -> None:
    # all of Unicode category Cf in the BMP (zero-width, joiners, bidi marks, BOM, soft hyphen ...)
    format_chars = [chr(cp) for cp in range(0x10000) if unicodedata.category(chr(cp)) == "Cf"]
    assert len(format_chars) > 40
    for mark in format_chars:
        out, _ = R.redact_text(f"mail alice{mark}@example.org or AKIA{mark}IOSFODNN7EXAMPLQ now")
        assert out.count("<") == 2 and "alice" not in out and "IOSFODNN" not in out, (hex(ord(mark)), out)


def test_a_hidden_value_gets_the_tag_of_its_plain_form() -> None:
    plain = R.redact_text("alice@example.org")[0]
    assert R.redact_text("alice\u200b@exam\u00adple.org")[0] == plain
    assert R.redact_text("AKIA\u2060IOSFODNN7EXAMPLQ")[0] == R.redact_text("AKIAIOSFODNN7EXAMPLQ")[0]


def test_emoji_sequences_and_persian_words_make_no_view() -> None:
    for text in ("family 👨\u200d👩\u200d👧 ❤\ufe0f thanks", "می\u200cخواهم", "اسم\u200cها 123"):
        assert R.redact_text(text) == (text, {})


@pytest.mark.parametrize("type_name", ["EMAIL", "AWS_ACCESS_KEY", "OPENAI_KEY", "GITHUB_TOKEN", "CREDIT_CARD"])
@pytest.mark.parametrize("style", ["decimal", "hex", "named", "json_escape"])
def test_character_references_are_decoded(type_name: str, style: str) -> None:
    value = SECRETS[type_name]
    pick = "@" if "@" in value else value[5]

    def ref(c: str) -> str:
        if style == "decimal":
            return f"&#{ord(c)};"
        if style == "hex":
            return f"&#x{ord(c):x};"
        if style == "json_escape":
            return f"\\u{ord(c):04x}"
        return {"@": "&commat;", ".": "&period;"}.get(c, f"&#{ord(c)};")

    written = "".join(ref(c) if c == pick or c in ".-" else c for c in value)
    assert html.unescape(written) == value or style == "json_escape"
    out, summary = R.redact_text(f"data: {written} end")
    assert out.startswith("data: <") and out.endswith("> end"), out
    assert summary


@pytest.mark.parametrize("space", ODD_SPACES, ids=lambda c: f"U+{ord(c):04X}")
def test_cards_and_ssns_grouped_by_odd_spaces_are_masked(space: str) -> None:
    for value in ("4111 1111 1111 1111", "5500 0000 0000 0004", "123 45 6789"):
        out, summary = R.redact_text(f"card {value.replace(' ', space)} ok")
        assert out.count("<") == 1 and not any(g in out for g in value.split()), out
        assert summary


KEYS = ["AWS_ACCESS_KEY", "OPENAI_KEY", "ANTHROPIC_KEY", "GITHUB_TOKEN", "GOOGLE_API_KEY", "SLACK_TOKEN", "STRIPE_KEY",
        "JWT"]


@pytest.mark.parametrize("type_name", KEYS)
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_a_key_broken_over_lines_is_masked_at_any_break(type_name: str, newline: str) -> None:
    value = SECRETS[type_name]
    for cut in range(3, len(value) - 1, 3):
        text = f"key:\n{value[:cut]}{newline}{value[cut:]}\nthanks"
        out, summary = R.redact_text(text)
        assert not leaks(value, out), (cut, out)
        assert out.endswith("\nthanks") and summary


def test_a_key_broken_twice_is_masked() -> None:
    value = SECRETS["OPENAI_KEY"]
    out, _ = R.redact_text(f"{value[:12]}\n{value[12:30]}\n{value[30:]}\nbye")
    assert not leaks(value, out) and out.endswith("\nbye"), out


NAMES = ["ｐａｓｓｗｏｒｄ", "pass\u200bword", "pass\u00adword", "PASS\u2060WORD", "Ａｐｉ＿Ｋｅｙ",
         "client\ufeff_secret",
         "ｏｔｐ", "x-api-\u200dkey"]


@pytest.mark.parametrize("name", NAMES)
def test_secret_key_names_in_other_forms_mask_their_value(name: str) -> None:
    out, summary = R.redact_json({name: "hunter2secret", "note": "hello"})
    assert out[name].startswith("<SECRET:") and out["note"] == "hello"
    assert summary == {"SECRET": 1}
    # inside a JSON string too (tool-call arguments)
    out, _ = R.redact_json({"arguments": '{"' + name + '": "hunter2secret"}'})
    assert "hunter2secret" not in str(out)
    # a URL parameter of that name
    url, _ = R.redact_url(f"https://h/x?{name}=hunter2secret&a=1")
    assert "hunter2secret" not in url
