"""Placeholders, user rules, allow-list, fail-closed contract, JSON, headers and URLs."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys

import pytest

import sidecar.redact as redact_pkg
from sidecar.redact import RedactionError, Redactor, Rule, parse_rules

KEY = b"engine-test-key-0123456789abcdef"
R = Redactor(KEY)
GOOGLE = "AIzaSyA1234567890abcdefghijklmnopqrstuv"
ANTHROPIC = "sk-ant-api03-" + "Ab3_x-" * 15 + "AbcAA"
OPENAI = "sk-proj-" + "Xy7_Zq-9" * 10


# -- placeholders -----------------------------------------------------------------------------


def test_placeholder_is_type_and_first_8_hex_of_hmac_sha256() -> None:
    expected = hmac.new(KEY, b"alice@example.com", hashlib.sha256).hexdigest()[:8]
    assert R.fingerprint("alice@example.com") == expected
    assert R.placeholder("EMAIL", "alice@example.com") == f"<EMAIL:{expected}>"
    out, summary = R.redact_text("to alice@example.com")
    assert out == f"to <EMAIL:{expected}>" and summary == {"EMAIL": 1}


def test_same_value_same_tag_other_key_unrelated_tag() -> None:
    a1, _ = R.redact_text("x alice@example.com y alice@example.com")
    a2, _ = Redactor(KEY).redact_text("alice@example.com")
    tag = R.placeholder("EMAIL", "alice@example.com")
    assert a1 == f"x {tag} y {tag}" and a2 == tag
    other = Redactor(b"another-key-entirely-000000000000")
    assert other.placeholder("EMAIL", "alice@example.com") != tag
    # different values, different tags
    assert R.placeholder("EMAIL", "bob@example.com") != tag
    # unrelated across keys: of 200 values, no tag coincides (8 hex digits: chance ~ 200/4e9)
    values = [f"user{i}@example.com" for i in range(200)]
    assert not {R.fingerprint(v) for v in values} & {other.fingerprint(v) for v in values}


def test_same_tag_in_another_process() -> None:
    code = (
        "from sidecar.redact import Redactor;"
        f"print(Redactor({KEY!r}).redact_text('call 13812345678')[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "call " + R.placeholder("PHONE", "13812345678")


def test_numbers_written_two_ways_share_a_tag() -> None:
    assert R.placeholder("CREDIT_CARD", "4111 1111 1111 1111") == R.placeholder("CREDIT_CARD", "4111111111111111")
    assert R.placeholder("PHONE", "+86 138 1234 5678") == R.placeholder("PHONE", "13812345678")
    assert R.placeholder("EMAIL", "Alice@Example.com") == R.placeholder("EMAIL", "alice@example.com")


def test_api_key_fingerprint_matches_its_placeholder() -> None:
    out, _ = R.redact_text(f"key={OPENAI}")
    assert R.fingerprint(OPENAI) in out


def test_redaction_is_idempotent_and_placeholders_survive() -> None:
    text = f"mail a@b.co key {GOOGLE} password=hunter2x phone 13812345678 https://u:p4ss@h/ {ANTHROPIC}"
    once, _ = R.redact_text(text)
    twice, summary = R.redact_text(once)
    assert twice == once and summary == {}


def test_overlapping_detections_leave_no_fragment() -> None:
    text = f"https://bob:{OPENAI}@api.example.com/v1"
    out, _ = R.redact_text(text)
    assert "bob" not in out and OPENAI not in out and OPENAI[:12] not in out


def test_surrogates_and_empty_text() -> None:
    assert R.redact_text("") == ("", {})
    out, summary = R.redact_text("bad \udcff bytes alice@example.com")
    assert "alice" not in out and summary == {"EMAIL": 1}


# -- user rules and allow-list --------------------------------------------------------------


def test_extra_rule_and_allow_list() -> None:
    r = Redactor(KEY, extra_rules=[Rule("TICKET", r"TCK-[0-9]{6}", literals=("TCK-",))], allow=["ops@example.com"])
    out, summary = r.redact_text("TCK-123456 from ops@example.com cc dev@example.com")
    assert out.startswith(r.placeholder("TICKET", "TCK-123456") + " from ops@example.com cc <EMAIL:")
    assert summary == {"TICKET": 1, "EMAIL": 1}


def test_extra_rule_with_validator() -> None:
    from sidecar.redact import VALIDATORS

    r = Redactor(KEY, extra_rules=[Rule("ACCOUNT", r"ACC[0-9]{16}", VALIDATORS["luhn"])])
    assert r.redact_text("ACC4111111111111111")[1] == {"ACCOUNT": 1}
    assert r.redact_text("ACC4111111111111112")[1] == {}


@pytest.mark.parametrize(
    ("pattern", "needle"),
    [
        ("TCK-[0-9]+", "unbounded"),
        ("TCK-.*", "unbounded"),
        ("TCK-[0-9]{3,}", "unbounded"),
        ("TCK-(", "does not compile"),
        ("a{0,99999}", "exceeds"),
        ("x?", "empty string"),
    ],
)
def test_bad_user_pattern_names_the_rule(pattern: str, needle: str) -> None:
    with pytest.raises(RedactionError, match="MY_TICKETS") as info:
        Redactor(KEY, extra_rules=[Rule("MY_TICKETS", pattern)])
    assert needle in str(info.value)


def test_bounded_forms_are_accepted() -> None:
    Redactor(KEY, extra_rules=[Rule("OK_RULE", r"[*+]{1,3}a{2}?b?+(?:x|y){0,5}\{n,\}[a-z]{,4}")])


def test_bad_rule_name_is_rejected() -> None:
    with pytest.raises(RedactionError, match="lower"):
        Redactor(KEY, extra_rules=[Rule("lower", "abc")])


def test_parse_rules_from_json() -> None:
    rules = parse_rules('[{"name": "TICKET", "pattern": "TCK-[0-9]{6}"},'
                        ' {"name": "ACCT", "pattern": "[0-9]{16}", "validator": "luhn", "literals": ["4"]}]')
    assert [r.name for r in rules] == ["TICKET", "ACCT"]
    assert rules[1].validator is redact_pkg.VALIDATORS["luhn"]
    assert parse_rules("") == [] and parse_rules("  ") == []


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ('[{"name": "BAD_ONE", "pattern": "a+"}]', "BAD_ONE"),
        ('[{"name": "BAD_TWO", "pattern": "a{1,3}", "validator": "nope"}]', "BAD_TWO"),
        ('[{"name": "BAD_THREE", "pattern": "(a{1,3}"}]', "BAD_THREE"),
        ('[{"name": "BAD_FOUR", "pattern": "a{1,3}", "extra": 1}]', "BAD_FOUR"),
        ('[{"pattern": "a{1,3}"}]', "#0"),
        ("{not json", "not valid JSON"),
        ('{"name": "X"}', "JSON list"),
    ],
)
def test_parse_rules_errors_name_the_rule(spec: str, needle: str) -> None:
    with pytest.raises(RedactionError, match=needle.replace("#", "\\#")):
        parse_rules(spec)


# -- fail closed ----------------------------------------------------------------------------


def _exploding(value: str) -> bool:
    raise ValueError(f"boom on {value}")


def test_internal_error_raises_redaction_error_without_content() -> None:
    r = Redactor(KEY, extra_rules=[Rule("BOOM", r"secret-[0-9]{4}", _exploding)])
    text = "the secret-1234 is here alice@example.com"
    for call in (r.redact_text, r.redact_json, r.redact_url, lambda t: r.redact_headers({"x-note": t})):
        with pytest.raises(RedactionError) as info:
            call(text)
        assert "secret-1234" not in str(info.value) and "alice" not in str(info.value)
        assert info.value.__cause__ is None and info.value.__suppress_context__


def test_non_string_input_fails_closed() -> None:
    with pytest.raises(RedactionError):
        R.redact_text(b"alice@example.com")  # type: ignore[arg-type]
    with pytest.raises(RedactionError):
        R.redact_json({"a": object()})


def test_user_rule_time_budget_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    import sidecar.redact._scan as engine

    monkeypatch.setattr(engine, "USER_RULE_TIMEOUT_S", 0.0)
    r = Redactor(KEY, extra_rules=[Rule("NESTED", r"(?:a{1,20}){1,20}b")])
    with pytest.raises(RedactionError, match="NESTED"):
        r.redact_text("a" * 200_000)


# -- JSON -----------------------------------------------------------------------------------


def test_json_masks_by_key_name_and_by_content() -> None:
    body = {
        "model": "gpt-4o",
        "api_key": "plain-looking-value",
        "Password": "hunter2",
        "nested": {"client-secret": {"a": "x1", "b": [1, 2.5, None, True]}, "accessToken": "abc"},
        "messages": [{"role": "user", "content": "mail alice@example.com, key " + GOOGLE}],
        "usage": {"prompt_tokens": 12, "total_tokens": 30},
        "max_tokens": 100,
        "logprobs": [{"token": "Hello", "logprob": -0.1}],
        "token": "Xa9_bC7dE5fG3hJ1kL",
        "alice@example.com": "key is an e-mail",
        "phone": 13812345678,
        "order_id": 20241125123,
    }
    out, summary = R.redact_json(body)
    assert out["model"] == "gpt-4o"
    assert out["api_key"] == R.placeholder("SECRET", "plain-looking-value")
    assert out["Password"].startswith("<SECRET:")
    assert out["nested"]["client-secret"]["a"].startswith("<SECRET:")
    assert out["nested"]["client-secret"]["b"][0].startswith("<SECRET:")
    assert out["nested"]["client-secret"]["b"][2:] == [None, True]
    assert out["nested"]["accessToken"].startswith("<SECRET:")
    assert out["messages"][0]["content"] == (
        f"mail {R.placeholder('EMAIL', 'alice@example.com')}, key {R.placeholder('GOOGLE_API_KEY', GOOGLE)}"
    )
    assert out["usage"] == {"prompt_tokens": 12, "total_tokens": 30} and out["max_tokens"] == 100
    assert out["logprobs"] == [{"token": "Hello", "logprob": -0.1}]
    assert out["token"].startswith("<SECRET:")
    assert R.placeholder("EMAIL", "alice@example.com") in out
    assert out["phone"] == R.placeholder("PHONE", "13812345678")
    assert out["order_id"] == 20241125123
    assert body["api_key"] == "plain-looking-value"  # input not modified
    assert summary["SECRET"] >= 6 and summary["EMAIL"] == 2 and summary["GOOGLE_API_KEY"] == 1


def test_json_secret_key_typed_by_content_when_exactly_a_key() -> None:
    out, summary = R.redact_json({"x-api-key": ANTHROPIC})
    assert out == {"x-api-key": R.placeholder("ANTHROPIC_KEY", ANTHROPIC)} and summary == {"ANTHROPIC_KEY": 1}


# -- headers --------------------------------------------------------------------------------


def test_headers_by_name_and_content() -> None:
    headers = [
        ("Authorization", f"Bearer {OPENAI}"),
        ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
        ("X-Api-Key", ANTHROPIC),
        ("api-key", "azure0123456789"),
        ("x-goog-api-key", GOOGLE),
        ("Cookie", "session=abc123; theme=dark"),
        ("Set-Cookie", "sid=xyz; Path=/; HttpOnly"),
        ("X-Custom-Token", "opaque"),
        ("User-Agent", "bot (mailto:ops@example.com)"),
        ("Content-Type", "application/json"),
        ("x-ratelimit-remaining-tokens", "1000"),
        ("Set-Cookie", "b=2"),
    ]
    out, summary = R.redact_headers(headers)
    assert out["authorization"] == f"Bearer {R.placeholder('OPENAI_KEY', OPENAI)}"
    assert out["proxy-authorization"] == f"Basic {R.placeholder('AUTH', 'dXNlcjpwYXNz')}"
    assert out["x-api-key"] == R.placeholder("ANTHROPIC_KEY", ANTHROPIC)
    assert out["api-key"] == R.placeholder("API_KEY", "azure0123456789")
    assert out["x-goog-api-key"] == R.placeholder("GOOGLE_API_KEY", GOOGLE)
    assert out["cookie"] == f"session={R.placeholder('COOKIE', 'abc123')}; theme={R.placeholder('COOKIE', 'dark')}"
    sid, b = R.placeholder("COOKIE", "xyz"), R.placeholder("COOKIE", "2")
    assert out["set-cookie"] == f"sid={sid}; Path=/; HttpOnly, b={b}"
    assert out["x-custom-token"] == R.placeholder("API_KEY", "opaque")
    assert out["user-agent"] == f"bot (mailto:{R.placeholder('EMAIL', 'ops@example.com')})"
    assert out["content-type"] == "application/json"
    assert out["x-ratelimit-remaining-tokens"] == "1000"
    assert summary["COOKIE"] == 4


def test_headers_from_mapping() -> None:
    out, summary = R.redact_headers({"AUTHORIZATION": "token-without-scheme"})
    assert out == {"authorization": R.placeholder("AUTH", "token-without-scheme")} and summary == {"AUTH": 1}


# -- URLs -----------------------------------------------------------------------------------


def test_gemini_url_key_masked_path_kept() -> None:
    url = f"https://generativelanguage.googleapis.com/v1beta/models/gemini-pro:generateContent?key={GOOGLE}&alt=sse"
    out, summary = R.redact_url(url)
    assert out == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-pro:generateContent"
        f"?key={R.placeholder('GOOGLE_API_KEY', GOOGLE)}&alt=sse"
    )
    assert summary == {"GOOGLE_API_KEY": 1}


def test_url_userinfo_masked() -> None:
    out, summary = R.redact_url("https://user:pass@host/")
    assert out == f"https://{R.placeholder('URL_CREDENTIALS', 'user:pass')}@host/" and summary == {"URL_CREDENTIALS": 1}
    out, _ = R.redact_url("https://ghtoken@github.com/org/repo.git")
    assert "ghtoken" not in out


@pytest.mark.parametrize(
    "param", ["api_key", "apikey", "access_token", "token", "sig", "signature", "X-Amz-Signature", "code", "Key"]
)
def test_url_secret_params(param: str) -> None:
    out, summary = R.redact_url(f"https://h.example/p?page=2&{param}=v4lue%2Fx#frag")
    assert out == f"https://h.example/p?page=2&{param}={R.placeholder('SECRET', 'v4lue/x')}#frag"
    assert summary == {"SECRET": 1}


def test_url_content_rules_and_odd_urls() -> None:
    out, _ = R.redact_url("https://h/users/alice@example.com/orders?phone=13812345678")
    assert "alice@example.com" not in out and "13812345678" not in out and out.startswith("https://h/users/<EMAIL:")
    out, _ = R.redact_url("https://a/cb#access_token=abcdef123&state=1")
    assert "abcdef123" not in out and out.endswith("&state=1")
    for odd in ("", "not a url", "http://[::1", "?", "#", "://@", "https://h/?=&&=x"):
        R.redact_url(odd)  # never raises on odd input
