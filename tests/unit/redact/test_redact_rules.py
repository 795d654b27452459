"""Each built-in detector: found in context (English and glued to Chinese), validated, and bounded."""

from __future__ import annotations

import base64
import random
import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.redact import BUILTIN_RULES, IP_RULES, VALIDATORS, Redactor, check_rule
from sidecar.redact._check import _unbounded
from sidecar.redact._validators import (
    _has_entropy,
    _mixed_token,
    card_ok,
    cn_id_ok,
    cn_uscc_ok,
    iban_ok,
    luhn_ok,
    us_ssn_ok,
)

KEY = b"unit-test-key-0123456789abcdef"
R = Redactor(KEY)
RIP = Redactor(KEY, detect_ip=True)

_rng = random.Random(7)


def _chars(alphabet: str, n: int) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


B62 = string.ascii_letters + string.digits
B64URL = B62 + "-_"
PEM_BODY = base64.b64encode(bytes(range(256)) * 2).decode()
PEM = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(PEM_BODY[i : i + 64] for i in range(0, len(PEM_BODY), 64))
PEM += "\n-----END RSA PRIVATE KEY-----"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)

# (type, value) pairs in each vendor's real shape, and valid personal data
POSITIVES: list[tuple[str, str]] = [
    ("PRIVATE_KEY", PEM),
    ("PRIVATE_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n"
                    "-----END OPENSSH PRIVATE KEY-----"),
    ("OPENAI_KEY", "sk-proj-" + _chars(B64URL, 74) + "T3BlbkFJ" + _chars(B64URL, 74)),
    ("OPENAI_KEY", "sk-svcacct-" + _chars(B64URL, 60)),
    ("OPENAI_KEY", "sk-" + _chars(B62, 20) + "T3BlbkFJ" + _chars(B62, 20)),
    ("API_KEY", "sk-" + _chars("0123456789abcdef", 32)),
    ("API_KEY", "sk-" + _chars(B62, 48)),
    ("ANTHROPIC_KEY", "sk-ant-api03-" + _chars(B64URL, 93) + "AA"),
    ("ANTHROPIC_KEY", "sk-ant-admin01-" + _chars(B64URL, 93) + "AA"),
    ("GOOGLE_API_KEY", "AIza" + _chars(B64URL, 35)),
    ("AWS_ACCESS_KEY", "AKIA" + _chars(string.ascii_uppercase + "234567", 16)),
    ("AWS_ACCESS_KEY", "ASIA" + _chars(string.ascii_uppercase + "234567", 16)),
    ("GITHUB_TOKEN", "ghp_" + _chars(B62, 36)),
    ("GITHUB_TOKEN", "gho_" + _chars(B62, 36)),
    ("GITHUB_TOKEN", "github_pat_" + _chars(B62, 22) + "_" + _chars(B62, 59)),
    ("HF_TOKEN", "hf_" + _chars(string.ascii_letters, 34)),
    ("SLACK_TOKEN", "xoxb-" + _chars(string.digits, 11) + "-" + _chars(string.digits, 13) + "-" + _chars(B62, 24)),
    ("SLACK_TOKEN", "xoxp-" + _chars(string.digits, 11) + "-" + _chars(string.digits, 12) + "-" + _chars(B62, 32)),
    ("STRIPE_KEY", "sk_live_" + _chars(B62, 24)),
    ("STRIPE_KEY", "rk_live_" + _chars(B62, 99)),
    ("JWT", JWT),
    ("EMAIL", "alice.smith+llm@example.co.uk"),
    ("EMAIL", "zhang.wei@163.com"),
    ("PHONE", "13812345678"),
    ("PHONE", "+86 138 1234 5678"),
    ("PHONE", "+8613812345678"),
    ("PHONE", "138-1234-5678"),
    ("PHONE", "(415) 555-2671"),
    ("PHONE", "415-555-2671"),
    ("PHONE", "415.555.2671x123"),
    ("PHONE", "+1-415-555-2671"),
    ("PHONE", "+14155552671"),
    ("PHONE", "001-415-555-2671"),
    ("PHONE", "4155552671"),
    ("CREDIT_CARD", "4111111111111111"),
    ("CREDIT_CARD", "4111 1111 1111 1111"),
    ("CREDIT_CARD", "5500-0000-0000-0004"),
    ("CREDIT_CARD", "378282246310005"),
    ("CREDIT_CARD", "6011111111111117"),
    ("CREDIT_CARD", "6212345678901265"),
    ("CN_ID", "11010519491231002X"),
    ("CN_ID", "440308199901011234"),
    ("US_SSN", "536-22-8726"),
    ("US_SSN", "536 22 8726"),
    ("IBAN", "GB82WEST12345698765432"),
    ("IBAN", "DE89 3704 0044 0532 0130 00"),
    ("IBAN", "FR1420041010050500013M02606"),
    ("CN_USCC", "91350100M000100Y43"),
    ("CN_USCC", "91110000600037341L"),
]


@pytest.mark.parametrize(("type_name", "value"), POSITIVES, ids=[f"{t}-{i}" for i, (t, _) in enumerate(POSITIVES)])
@pytest.mark.parametrize(
    "template",
    ["{v}", "value: {v} end", "联系我{v}谢谢", "（{v}）。", "邮箱是{v}。", "'{v}'", '{{"x": "{v}"}}'],
)
def test_detector_finds_value_in_context(type_name: str, value: str, template: str) -> None:
    text = template.format(v=value)
    out, summary = R.redact_text(text)
    assert value not in out
    assert summary.get(type_name, 0) >= 1, (out, summary)
    before, after = template.split("{v}")
    before, after = before.replace("{{", "{"), after.replace("}}", "}")
    assert out.startswith(before) and out.endswith(after), out  # the context (Chinese included) is intact
    assert out == before + R.placeholder(type_name, value) + after


def test_chinese_examples_from_the_issue() -> None:
    out, summary = R.redact_text("联系我13812345678谢谢")
    assert out == f"联系我{R.placeholder('PHONE', '13812345678')}谢谢" and summary == {"PHONE": 1}
    out, summary = R.redact_text("邮箱是alice@example.com。")
    assert out == f"邮箱是{R.placeholder('EMAIL', 'alice@example.com')}。" and summary == {"EMAIL": 1}


@pytest.mark.parametrize(
    ("before", "secret", "after"),
    [
        ("Bearer ", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", ""),
        ("Authorization: Bearer ", "7f3kQ9zX2mPqL8vN4wRtY6uB", ""),
        ("auth header 'Basic ", "dXNlcjpwYXNzd29yZA==", "'"),
        ("db: postgres://", "admin:s3cr3t-P4ss@db.internal", ":5432/app"),
        ("password=", "hunter2hunter2", ""),
        ('config {"client_secret": "', "AbC123xyz789", '"}'),
        ("DB_PASSWORD='", "p@ss-w0rd!", "'"),
    ],
)
def test_context_rules_mask_the_credential_only(before: str, secret: str, after: str) -> None:
    """The credential becomes one placeholder; the scheme or key name before it and what follows stay."""
    out, summary = R.redact_text(before + secret + after)
    assert summary, out
    assert re.fullmatch(re.escape(before) + r"<[A-Z_]+:[0-9a-f]{8}>" + re.escape(after), out), out


@pytest.mark.parametrize(
    "template",
    [
        "pAsSwOrD=hunter2hunter2",
        "Api_Key: hunter2hunter2",
        '{"CLIENT_Secret": "hunter2hunter2"}',
        "ACCESS_token=hunter2hunter2",
        "PwD = hunter2hunter2",
        "authorization: BEARER hunter2hunter2",
        "authorization: bEaReR hunter2hunter2",
    ],
)
@pytest.mark.parametrize("padding", [0, 400])  # short texts (literal gate) and long ones (no gate)
def test_key_names_and_schemes_in_any_case(template: str, padding: int) -> None:
    text = "说明 " * padding + template
    out, summary = R.redact_text(text)
    assert "hunter2hunter2" not in out
    assert set(summary) <= {"SECRET", "AUTH"} and summary, summary


def test_bearer_with_known_key_is_typed_by_the_key() -> None:
    key = "sk-ant-api03-" + _chars(B64URL, 93) + "AA"
    out, summary = R.redact_text(f"Authorization: Bearer {key}")
    assert out == f"Authorization: Bearer {R.placeholder('ANTHROPIC_KEY', key)}"
    assert summary == {"ANTHROPIC_KEY": 1}


@pytest.mark.parametrize(
    "text",
    [
        "order 20241125123456789 shipped",  # order number
        "ts=1732530000 ms=1732530000123",  # epoch seconds / milliseconds
        "订单号202411251234567890已发货",
        "version 1.2.3 and 10.0.19045.3693 build",
        "uuid 550e8400-e29b-41d4-a716-446655440000",
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "card-like 4111111111111112 fails Luhn",
        "id 11010519491231002Y bad check char",
        "ssn-like 000-12-3456 and 666-12-3456 and 900-12-3456 and 123-00-4567 and 123-45-0000",
        "iban-like GB82WEST12345698765433",
        "uscc-like 91350100M000100Y44",
        "the task-based risk-free desk-top approach",
        "sk-learn and sk-this-is-a-lowercase-slug-only",
        "basic understanding of the bearer instruments",
        "released 2024-11-25 12:30:45 on port localhost:8080",
        "price $1,234.56 or ¥99.00, 12.5% off, HTTP 429",
        "snowflake 1861234567890123456 and tracking 1Z999AA10123456784",
        "max_tokens: 4096, prompt_tokens=1234",
        "phone-like 123-456-7890 has area code 123",
    ],
)
def test_clean_text_survives(text: str) -> None:
    out, summary = R.redact_text(text)
    assert out == text, out
    assert summary == {}


def test_ip_only_when_enabled() -> None:
    text = "client 203.0.113.7 via 2001:db8::8a2e:370:7334 at 12:30:45"
    assert R.redact_text(text) == (text, {})
    out, summary = RIP.redact_text(text)
    assert "203.0.113.7" not in out and "2001:db8::8a2e:370:7334" not in out
    assert summary == {"IP_ADDRESS": 2}
    assert out.endswith(" at 12:30:45")


def test_validators_agree_with_python_stdnum() -> None:
    from faker import Faker
    from stdnum import iban, luhn
    from stdnum.cn import ric, uscc
    from stdnum.us import ssn

    zh, en = Faker("zh_CN"), Faker("en_US")
    zh.seed_instance(1)
    en.seed_instance(1)
    for _ in range(300):
        cid = zh.ssn()
        # stdnum also checks the birth place against its region table; compare the MOD 11-2 check
        assert cn_id_ok(cid) == (ric.calc_check_digit(cid) == cid[-1])
        assert not cn_id_ok(cid[:-1] + ("0" if cid[-1] != "0" else "1"))
        card = en.credit_card_number()
        assert luhn_ok(card) == luhn.is_valid(card)
        s = en.ssn()
        assert us_ssn_ok(s) == ssn.is_valid(s)
        ib = Faker("de_DE").iban()
        assert iban_ok(ib) == iban.is_valid(ib)
    assert cn_uscc_ok("91350100M000100Y43") and uscc.is_valid("91350100M000100Y43")
    assert not cn_uscc_ok("91350100M000100Y44") and not uscc.is_valid("91350100M000100Y44")
    assert card_ok("4111 1111 1111 1111") and not card_ok("9111111111111111")


def test_builtin_rules_are_bounded_and_valid() -> None:
    for rule in BUILTIN_RULES + IP_RULES:
        assert _unbounded(rule.pattern) is None, rule
        check_rule(rule)
    assert set(VALIDATORS) >= {"luhn", "cn_id", "cn_uscc", "us_ssn", "iban"}


@pytest.mark.parametrize("size", [16_000, 16_384, 40_000])
@pytest.mark.parametrize("footer", [True, False])
def test_private_key_body_of_any_size_is_masked_whole(size: int, footer: bool) -> None:
    """The body is read in runs (possessive): a block longer than one run's bound, with dashes,
    escaped newlines and PEM headers inside, is one finding from its header to its footer (or, with
    no footer, to the end of the body), whichever engine scans."""
    body = ("Proc-Type: 4,ENCRYPTED\\n" + "-" + _chars(PEM_BODY + "\n", 97)) * (size // 120 + 1)
    end = "\n-----END ENCRYPTED PRIVATE KEY-----" if footer else ""
    block = "-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + body[:size] + end
    text = "key: " + block + (" ----- trailing words" if footer else "")
    plain = Redactor(KEY)
    plain._scanner.prefilter = None
    for redactor in (R, plain):
        findings = redactor.scan(text)
        assert [(f.start, f.end, f.type) for f in findings] == [(5, 5 + len(block), "PRIVATE_KEY")]
        out, summary = redactor.redact_text(text)
        assert summary == {"PRIVATE_KEY": 1} and "Proc-Type" not in out and PEM_BODY[:20] not in out


def _loop_entropy(value: str) -> bool:
    return any(c.isdigit() or c.isupper() for c in value)


def _loop_mixed(value: str) -> bool:
    return any(c.isdigit() or c in "._~+/=-" for c in value) or sum(1 for c in value[1:] if c.isupper()) >= 2


@given(st.text(alphabet=string.ascii_letters + string.digits + "._~+/=-: ²٣ÉŞ", max_size=24))
def test_token_validators_read_like_their_definition(value: str) -> None:
    """The compiled fast paths of the token validators agree with the character loops they replace."""
    assert _has_entropy(value) == _loop_entropy(value)
    assert _mixed_token(value) == _loop_mixed(value)


def _card_by_definition(value: str) -> bool:
    """Any run of the digit groups (the whole value, or a part of it) is a valid card number
    (``card_ok`` of a value without separators checks that one number)."""
    groups = [g for g in re.split(r"[ -]", value) if g]
    runs = ("".join(groups[i:j]) for i in range(len(groups)) for j in range(i + 1, len(groups) + 1))
    return any(card_ok(d) for d in runs)


@given(st.lists(st.sampled_from(["4111111111111111", "378282246310005", "6011111111111117", "180012345678902"])
                | st.from_regex(r"\A[0-9]{1,8}\Z"), min_size=1, max_size=7),
       st.lists(st.sampled_from([" ", "-", ""]), min_size=7, max_size=7))
def test_card_check_finds_a_card_among_any_digit_groups(groups: list[str], seps: list[str]) -> None:
    """The card check skips runs of groups that cannot be 13-19 digits long, and still accepts a
    value exactly when some run of its groups is a valid card."""
    value = "".join(g + s for g, s in zip(groups, seps, strict=False)).strip(" -")
    assert card_ok(value) == _card_by_definition(value)
