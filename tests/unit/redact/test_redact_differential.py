"""Differential tests: the fast scan paths never mask less than the plain ones.

Three scan paths (RE2's set prefilter, the default; Hyperscan, used without RE2; the pure-``regex``
path, used without either) and one reference: the pure path with every numeric rule run over the
whole text (``windowed = False``), which is what each rule, read alone, detects.  A character
masked by the pure path (or by the reference) must be masked by every other path.

The generated texts plant secrets of every built-in rule type in mixed-script text, written in the
forms the views read (percent-encoded once and twice, full-width, JSON ``\\uXXXX`` escapes, HTML
references, an invisible character or a line break inside, no-break spaces), at lengths on both
sides of the 1,024 characters where the number windows start, with digits near the edges.
"""

from __future__ import annotations

import json
import os
import string
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redaction_paths import scan_paths

from sidecar.redact import RedactionError, Redactor
from sidecar.redact._prefilter import Prefilter, _compile_re2
from sidecar.redact._validators import iban_ok

KEY = b"differential-test-key-0123456789abcdef"


def _paths(**kwargs: object) -> dict[str, Redactor]:
    return scan_paths(KEY, **kwargs)


PATHS = _paths()
PATHS_IP = _paths(detect_ip=True)
FAST = ("re2", "hyperscan")


def _masked(redactor: Redactor, text: str) -> set[int]:
    return {i for f in redactor.scan(text) for i in range(f.start, f.end)}


def _unmasked(paths: dict[str, Redactor], text: str, reference: str, names: tuple[str, ...]) -> dict[str, int]:
    """How many characters the ``reference`` path masks that each path in ``names`` leaves."""
    expected = _masked(paths[reference], text)
    return {name: len(expected - _masked(paths[name], text)) for name in names if expected - _masked(paths[name], text)}


_AL = "Ab3dE9xQ"
SECRETS = {
    "PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGe\n"
                   "-----END RSA PRIVATE KEY-----",
    "ANTHROPIC_KEY": "sk-ant-api03-" + "Z1" * 20 + "AA",
    "OPENAI_KEY": "sk-proj-" + _AL * 4,
    "OPENAI_KEY_LEGACY": "sk-abcdEFGH12345678T3BlbkFJZYXWvuts98765432",
    "GOOGLE_API_KEY": "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
    "AWS_ACCESS_KEY": "AKIAIOSFODNN7EXAMPLQ",
    "GITHUB_TOKEN": "ghp_" + "a1B2c3D4e5" * 3 + "123456",
    "GITHUB_PAT": "github_pat_" + "11ABCDEFG0" * 3,
    "HF_TOKEN": "hf_" + "aBcDeFgHiJ" * 3 + "kl",
    "SLACK_TOKEN": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "SLACK_APP": "xapp-1-A0123456789-abcdef",
    "SLACK_WEBHOOK": "https://hooks.slack.com/services/T0123ABCD/B0123ABCD/abcdefghijklmnop1234",
    "STRIPE_KEY": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "STRIPE_WEBHOOK": "whsec_" + "aB1" * 9,
    "JWT": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "API_KEY": "sk-q9W8e7R6t5Y4u3I2o1P0as",
    "URL_CREDENTIALS": "https://alice:pa55w0rdX@db.internal/x",
    "AUTH_BEARER": "Authorization: Bearer abcDEF123456ghiJKL789",
    "AUTH_BASIC": "Basic dXNlcjpwYXNzd29yZA==",
    "SECRET_PASSWORD": "password=Hunter2Hunter2",
    "SECRET_PWD": "pwd: s3cr3tVal",
    "SECRET_CLIENT": 'client_secret="abc123XYZ789"',
    "SECRET_API_KEY": "api_key = Zz9Yy8Xx7Ww6",
    "SECRET_TOKEN": "access_token:tokVal12345",
    "SECRET_OTP": "otp=493021",
    "SECRET_TOTP": "TOTP: 123456",
    "SECRET_PIN": "pin=4821",
    "SECRET_CVV": "cvv2=123x",
    "SECRET_CVC": "cvc: 9876",
    "SECRET_MFA": "mfa_code=778899",
    "SECRET_SESSION": "session_id=ab12cd34ef",
    "SECRET_SIGNATURE": "signature=abcdEFGH1234",
    "SECRET_COOKIE": "cookie=sid-abc123",
    "SECRET_AUTHORIZATION": "authorization=Token123abc",
    "EMAIL": "alice.secret@example.org",
    "EMAIL_IDN": "josé.garcía@correo.es",
    "CN_ID": "11010519491231002X",
    "CN_USCC": "91350100M000100Y43",
    "CN_USCC_LETTER": "Y1350100M000100Y43",
    "IBAN": "DE89370400440532013000",
    "IBAN_SPACED": "DE89 3704 0044 0532 0130 00",
    "CREDIT_CARD": "4111 1111 1111 1111",
    "CREDIT_CARD_1800": "180012345678901",
    "US_SSN": "123-45-6789",
    "US_SSN_SPACED": "123 45 6789",
    "PHONE_CN": "+86 138 1234 5678",
    "PHONE_US_EXT": "415-555-2671 ext. 12",
    "PHONE_US_PAREN": "(415) 555-2671",
    "PHONE_US_PLUS1": "+1 (415) 555-2671",
    "PHONE_US_10": "4155552671",
    "PHONE_E164": "+442071838750",
    "IP_V4": "192.168.10.23",
    "IP_V6": "2001:db8:85a3::8a2e:370:7334",
}
_FULL_WIDTH = {ord(c): chr(ord(c) + 0xFEE0) for c in string.ascii_letters + string.digits + "@-_.:/=+"}
_INVISIBLE = ("\u200b", "\u00ad", "\u2060", "\ufeff", "\u200d")
_FILL = ("中文文本", "ёжик", "κείμενο", "テキスト", "😀", "é", " ", "\n", "x", "1", "2024-01-02 ", "#", "%", "&", "\\",
         "\x00", "١٢٣", "Ａ", "ab cd", "  ", "..", "+", "(", "00", "4", "-", "ـ", "\u200f", "\ud800")


@st.composite
def _written(draw: st.DrawFn) -> str:
    """One secret, written in one of the forms a view reads (or plainly)."""
    value = SECRETS[draw(st.sampled_from(sorted(SECRETS)))]
    form = draw(st.sampled_from(("plain", "pct", "pct2", "fullwidth", "uescape", "json", "invisible", "html",
                                 "nbsp", "wrap")))
    cut = draw(st.integers(1, len(value) - 1))
    if form == "pct":
        return quote(value, safe="")
    if form == "pct2":
        return quote(quote(value, safe=""), safe="")
    if form == "fullwidth":
        return value[:cut] + value[cut:].translate(_FULL_WIDTH)
    if form == "uescape":
        return value[:cut] + "".join(f"\\u{ord(c):04x}" for c in value[cut : cut + 6]) + value[cut + 6 :]
    if form == "json":
        return json.dumps(value)[1:-1]
    if form == "invisible":
        return value[:cut] + draw(st.sampled_from(_INVISIBLE)) + value[cut:]
    if form == "html":
        return value[:cut] + "".join(f"&#{ord(c)};" for c in value[cut : cut + 3]) + value[cut + 3 :]
    if form == "nbsp":
        return value.replace(" ", "\u00a0")
    if form == "wrap":
        return value[:cut] + "\n" + value[cut:]
    return value


@st.composite
def _texts(draw: st.DrawFn) -> str:
    """Secrets in mixed-script filler, the whole text sized around the 1,024-character mark."""
    sep = st.sampled_from(("", " ", "：", "é", "\n", "=", '"', "中", "。", ","))
    body = "".join(draw(sep) + draw(_written()) + draw(sep) for _ in range(draw(st.integers(1, 4))))
    size = draw(st.sampled_from((0, 60, 1000, 1020, 1023, 1024, 1025, 1030, 2100)))
    fill = draw(st.lists(st.sampled_from(_FILL), max_size=3))
    pad = "".join(fill) or " "
    pad = (pad * (1 + max(0, size - len(body)) // len(pad)))[: max(0, size - len(body))]
    where = draw(st.integers(0, len(pad)))
    return pad[:where] + body + pad[where:]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_texts())
def test_prefilter_paths_mask_everything_the_pure_regex_path_masks(text: str) -> None:
    for paths in (PATHS, PATHS_IP):
        assert _unmasked(paths, text, "plain", FAST) == {}, ascii(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_texts())
def test_generated_secrets_every_path_masks_what_the_whole_text_scan_masks(text: str) -> None:
    # Held on every generated text above (none carries an IBAN without a 7-character digit run).
    assert _unmasked(PATHS, text, "whole", ("re2", "hyperscan", "plain")) == {}, ascii(text)


def _letter_iban() -> str:
    """A valid IBAN (length and mod-97 check) whose digits never run seven characters long."""
    for check in range(100):
        value = f"GB{check:02d}WEST12AB34CD56EF78"
        if iban_ok(value):
            return value
    raise AssertionError("no check digits found")


LETTER_IBAN = _letter_iban()


def test_iban_without_a_digit_run_is_masked_in_short_text_on_the_pure_regex_path() -> None:
    # The number windows assume every numeric match holds a run of 7 digits/separators; an IBAN
    # needs only its 2 check digits.  The pure-regex path windows every text, so it misses it.
    for text in (f"iban {LETTER_IBAN} ok", f"IBAN: {' '.join(LETTER_IBAN[i:i + 4] for i in range(0, 22, 4))}"):
        assert _masked(PATHS["whole"], text), text
        assert _unmasked(PATHS, text, "whole", ("re2", "hyperscan", "plain")) == {}, text


def test_iban_without_a_digit_run_is_masked_in_long_text_with_other_numbers() -> None:
    # Over 1,024 characters, with three or more numeric rules reported, the prefilter paths use the
    # number windows too: all three paths leave the IBAN in the clear.
    text = "x" * 1100 + f" iban {LETTER_IBAN} and 415-555-2671, 4111 1111 1111 1111, 123-45-6789"
    assert _unmasked(PATHS, text, "whole", ("re2", "hyperscan", "plain")) == {}
    out, summary = PATHS["re2"].redact_text(text)
    assert LETTER_IBAN not in out and summary.get("IBAN") == 1


def test_iban_without_a_digit_run_is_masked_in_a_json_record() -> None:
    record = {"messages": [{"role": "user", "content": "y" * 1100 + f" pay {LETTER_IBAN}, call 415-555-2671, "
                                                        "card 4111 1111 1111 1111, ssn 123-45-6789"}]}
    redacted, summary = PATHS["re2"].redact_json(record)
    assert LETTER_IBAN not in json.dumps(redacted) and summary.get("IBAN") == 1


def test_lone_surrogates_and_nul_scan_like_the_pure_path() -> None:
    for text in ("\ud800 bob@example.com\x00 4111 1111 1111 1111", "\x00" * 1030 + " 123-45-6789 \udfff",
                 "sk-proj-" + _AL * 4 + "\ud800" + "x" * 1100 + "415-555-2671 4111 1111 1111 1111 +442071838750"):
        for name in FAST:
            assert PATHS[name].scan(text) == PATHS["plain"].scan(text), (name, ascii(text))


def test_many_repeated_candidates_in_a_long_text() -> None:
    text = "".join(f"u{i}@ex{i}.org 4111 1111 1111 1111 AKIA{i:016d} 中文 " for i in range(2000))
    expected = PATHS["whole"].scan(text)
    assert len(expected) == 6000
    for name in ("re2", "hyperscan", "plain"):
        assert PATHS[name].scan(text) == expected, name


def test_a_small_re2_memory_budget_loses_no_finding() -> None:
    redactor = Redactor(KEY)
    # the smallest budget the set still compiles with (below it, build gives no prefilter at all)
    small = _compile_re2(redactor._scanner.filter_patterns, max_mem=1 << 20)
    assert small is not None
    redactor._scanner.prefilter = small
    text = "".join(f"user{i}@ex{i}.org 4111 1111 1111 1111 AKIA{i:016d} " for i in range(3000))
    assert redactor.scan(text) == PATHS["plain"].scan(text)


class _Broken(Prefilter):
    def candidates(self, text: str) -> set[int] | None:
        raise MemoryError("scan failed")


def test_a_failing_prefilter_withholds_the_content() -> None:
    redactor = Redactor(KEY)
    redactor._scanner.prefilter = _Broken()
    with pytest.raises(RedactionError) as caught:
        redactor.redact_text("mail bob@example.com now")
    assert "bob" not in str(caught.value)
    with pytest.raises(RedactionError):
        redactor.redact_json({"content": "mail bob@example.com now"})


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_child_masks_what_the_parent_masks() -> None:
    text = "call 415-555-2671, mail bob@example.com, key " + SECRETS["OPENAI_KEY"] + " ５５５-１２-３４５６"
    expected = repr(PATHS["re2"].scan(text)).encode()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: scan with the parent's redactors, report, exit without cleanup
        try:
            found = b"|".join(repr(PATHS[n].scan(text)).encode() for n in FAST)
            os.write(write, found)
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    assert b"".join(chunks) == expected + b"|" + expected


# A validator-rejected candidate swallows an overlapping valid one: the scan goes on after the
# end of the rejected match, so a secret starting inside it is never tried (every path, and the
# version before the prefilter change, behave the same).


def _leaves_clear(text: str, value: str) -> list[str]:
    """The paths whose redacted text still holds ``value`` (compared without spaces and dashes)."""
    compact = value.replace(" ", "").replace("-", "")
    return [name for name, redactor in PATHS.items()
            if compact in redactor.redact_text(text)[0].replace(" ", "").replace("-", "")]


@pytest.mark.parametrize("text", ["paid in 2024 4111 1111 1111 1111", "order 2024 6011 0009 9013 9424",
                                  "booking 3456 4111-1111-1111-1111", "call 415-555-2671 4111 1111 1111 1111"])
def test_card_after_a_four_digit_number_is_masked(text: str) -> None:
    value = text[-19:]  # the card, written in four groups
    assert _leaves_clear(text, value) == []


@pytest.mark.parametrize("text", ["ref AB12 DE89 3704 0044 0532 0130 00", "code GB12 DE89370400440532013000"])
def test_iban_after_a_letters_and_digits_code_is_masked(text: str) -> None:
    value = text.split(" ", 2)[2]
    assert _leaves_clear(text, value) == []
