"""Deterministic labelled corpus for the redaction bench, evaluation and tests.

Personal data comes from ``faker`` (``en_US`` and ``zh_CN``, plus ``de_DE`` / ``fr_FR`` /
``en_GB`` for IBANs), kept only when an independent checker (``python-stdnum``) says it is
valid; keys are built in each vendor's published shape.  Every sample records what was planted
where, so precision and recall can be computed per type.

    from corpus import dirty_samples, clean_samples
    samples = dirty_samples(2000, seed=SEED)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from faker import Faker
from stdnum import iban as std_iban
from stdnum import luhn as std_luhn
from stdnum.cn import ric as std_cn_ric
from stdnum.cn import uscc as std_cn_uscc
from stdnum.us import ssn as std_us_ssn

SEED = 20261125

KEY_TYPES = (
    "PRIVATE_KEY", "OPENAI_KEY", "ANTHROPIC_KEY", "GOOGLE_API_KEY", "AWS_ACCESS_KEY", "GITHUB_TOKEN", "HF_TOKEN",
    "SLACK_TOKEN", "STRIPE_KEY", "JWT", "API_KEY", "AUTH", "URL_CREDENTIALS", "SECRET",
)  # fmt: skip
PII_TYPES = ("EMAIL", "PHONE", "CREDIT_CARD", "CN_ID", "US_SSN", "IBAN", "CN_USCC", "IP_ADDRESS")
ALL_TYPES = KEY_TYPES + PII_TYPES

_B62 = string.ascii_letters + string.digits
_B64URL = _B62 + "-_"
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@dataclass
class Planted:
    type: str
    value: str
    start: int
    end: int


@dataclass
class Sample:
    text: str
    lang: str
    planted: list[Planted] = field(default_factory=list)


class _Gen:
    """Value generators; one instance per corpus so the output only depends on the seed."""

    def __init__(self, seed: int, strict_phones: bool) -> None:
        self.rng = random.Random(seed)
        self.en = Faker("en_US")
        self.zh = Faker("zh_CN")
        self.ibans = [Faker(loc) for loc in ("de_DE", "fr_FR", "en_GB", "nl_NL", "es_ES", "it_IT")]
        for i, f in enumerate([self.en, self.zh, *self.ibans]):
            f.seed_instance(seed + i)
        self.strict_phones = strict_phones

    def chars(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    # -- keys in vendor formats ------------------------------------------------------------

    def openai_key(self) -> str:
        kind = self.rng.randrange(3)
        if kind == 0:  # project key: sk-proj- then ~156 base64url chars with the T3BlbkFJ marker inside
            return "sk-proj-" + self.chars(_B64URL, 74) + "T3BlbkFJ" + self.chars(_B64URL, 74)
        if kind == 1:  # legacy user key
            return "sk-" + self.chars(_B62, 20) + "T3BlbkFJ" + self.chars(_B62, 20)
        return "sk-svcacct-" + self.chars(_B64URL, 74) + "T3BlbkFJ" + self.chars(_B64URL, 74)

    def anthropic_key(self) -> str:
        kind = self.rng.choice(("api03", "admin01"))
        return f"sk-ant-{kind}-" + self.chars(_B64URL, 93) + "AA"

    def google_key(self) -> str:
        return "AIza" + self.chars(_B64URL, 35)

    def aws_key(self) -> str:
        return self.rng.choice(("AKIA", "ASIA")) + self.chars(string.ascii_uppercase + "234567", 16)

    def github_token(self) -> str:
        kind = self.rng.randrange(3)
        if kind == 0:
            return "ghp_" + self.chars(_B62, 36)
        if kind == 1:
            return "gho_" + self.chars(_B62, 36)
        return "github_pat_" + self.chars(_B62, 22) + "_" + self.chars(_B62, 59)

    def hf_token(self) -> str:
        return "hf_" + self.chars(string.ascii_letters, 34)

    def slack_token(self) -> str:
        kind = self.rng.choice("bpa")
        digits = string.digits
        return f"xox{kind}-{self.chars(digits, 11)}-{self.chars(digits, 13)}-{self.chars(_B62, 24)}"

    def stripe_key(self) -> str:
        return self.rng.choice(("sk_live_", "rk_live_")) + self.chars(_B62, self.rng.choice((24, 99)))

    def jwt(self) -> str:
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = b64(json.dumps({"sub": str(self.rng.randrange(10**9)), "name": self.en.name(),
                                  "iat": 1732500000 + self.rng.randrange(10**6)}).encode())
        sig = b64(hmac.new(self.chars(_B62, 16).encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest())
        return f"{header}.{payload}.{sig}"

    def private_key(self) -> str:
        label = self.rng.choice(("RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"))
        body = base64.b64encode(self.rng.randbytes(self.rng.choice((121, 400, 1190)))).decode()
        lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
        return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----"

    def generic_sk(self) -> str:  # DeepSeek / Moonshot style: sk- and 32 hex or 48 base62
        if self.rng.random() < 0.5:
            return "sk-" + self.chars("0123456789abcdef", 32)
        return "sk-" + self.chars(_B62, 48)

    def bearer(self) -> str:
        return self.chars(_B62, 40)

    def basic(self) -> str:
        return base64.b64encode(f"{self.en.user_name()}:{self.chars(_B62, 12)}".encode()).decode()

    def url_credentials(self) -> str:
        return f"{self.en.user_name()}:{self.chars(_B62, 14)}"

    def password(self) -> str:
        return self.chars(_B62 + "!#%^*", 14)

    # -- personal data -----------------------------------------------------------------------

    def email(self) -> str:
        return (self.en if self.rng.random() < 0.5 else self.zh).email()

    def phone(self) -> str:
        if self.rng.random() < 0.5:
            number = self.zh.phone_number()
            style = self.rng.randrange(4)
            if style == 1:
                return f"+86 {number}"
            if style == 2:
                return f"{number[:3]}-{number[3:7]}-{number[7:]}"
            if style == 3:
                return f"+86{number}"
            return number
        while True:
            number = self.en.phone_number()
            digits = "".join(c for c in number.split("x")[0] if c.isdigit())
            if digits.startswith("001"):
                digits = digits[3:]
            elif len(digits) == 11:
                digits = digits[1:]
            if (len(digits) == 10 and digits[0] in "23456789" and digits[3] in "23456789" and digits[1] != "9"
                    and digits[1:3] != "11" and digits[4:6] != "11"):
                if self.strict_phones and not _phonenumbers_valid(number):
                    continue
                return number

    def card(self) -> str:
        while True:
            number = (self.en if self.rng.random() < 0.5 else self.zh).credit_card_number()
            if std_luhn.is_valid(number) and number[0] in "3456" and 13 <= len(number) <= 19:
                break
        if len(number) == 16 and self.rng.random() < 0.4:
            sep = self.rng.choice(" -")
            return sep.join(number[i : i + 4] for i in range(0, 16, 4))
        return number

    def cn_id(self) -> str:
        while True:
            value = self.zh.ssn()
            if std_cn_ric.is_valid(value):
                return value

    def us_ssn(self) -> str:
        while True:
            value = self.en.ssn()
            if std_us_ssn.is_valid(value):
                return value

    def iban(self) -> str:
        while True:
            value = self.rng.choice(self.ibans).iban()
            if std_iban.is_valid(value):
                break
        if self.rng.random() < 0.3:
            return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return value

    def cn_uscc(self) -> str:
        while True:
            dept = self.rng.choice(("91", "92", "93", "11", "12", "51", "52", "53", "Y1"))
            region = self.zh.ssn()[:6]
            org = self.chars("0123456789ABCDEFGHJKLMNPQRTUWXY", 9)
            body = dept + region + org
            weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
            total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(body, weights, strict=True))
            value = body + _USCC_ALPHABET[(31 - total % 31) % 31]
            if std_cn_uscc.is_valid(value):
                return value

    def ip(self) -> str:
        return self.en.ipv4_public() if self.rng.random() < 0.6 else self.en.ipv6()


def _phonenumbers_valid(number: str) -> bool:
    import phonenumbers  # only for strict_phones (the evaluation), shipped with presidio-analyzer

    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(number.split("x")[0], "US")))
    except phonenumbers.NumberParseException:
        return False


# Template: (language, text with {v}, types it suits or None for any).  Chinese templates glue the
# value to the characters around it on purpose.
_TEMPLATES: list[tuple[str, str, tuple[str, ...] | None]] = [
    ("en", "Please use {v} for the next call.", None),
    ("en", "My {label} is {v}, do not share it.", None),
    ("en", "Here is the value you asked for: {v}", None),
    ("en", "Debug log: request failed with {v} (see ticket ORD-2024-118233).", None),
    ("en", "export SETTING_VALUE='{v}'", KEY_TYPES),
    ("en", "curl -H 'Authorization: Bearer {v}' https://api.example.com/v1/chat", (
        "OPENAI_KEY", "ANTHROPIC_KEY", "GITHUB_TOKEN", "HF_TOKEN", "JWT", "SLACK_TOKEN", "API_KEY", "STRIPE_KEY")),
    ("en", "Contact: {v}; order 48213377 shipped 2024-11-25 14:03:22.", PII_TYPES),
    ("zh", "请帮我查一下{v}谢谢", None),
    ("zh", "我的{label}是{v}。", None),
    ("zh", "联系我{v}，订单号2024112512345678已发货。", PII_TYPES),
    ("zh", "这个密钥{v}泄露了吗？", KEY_TYPES),
    ("zh", "（{v}）", None),
    ("zh", "用户资料：{v}，创建时间2024-11-25T10:00:00Z。", None),
]
_LABELS = {
    "EMAIL": ("email", "邮箱"), "PHONE": ("phone", "手机号"), "CREDIT_CARD": ("card", "卡号"),
    "CN_ID": ("ID number", "身份证号"), "US_SSN": ("SSN", "社保号"), "IBAN": ("IBAN", "账号"),
    "CN_USCC": ("company code", "统一社会信用代码"), "IP_ADDRESS": ("IP", "IP地址"),
}  # fmt: skip


def _generator(g: _Gen, type_name: str) -> Callable[[], str]:
    table: dict[str, Callable[[], str]] = {
        "PRIVATE_KEY": g.private_key, "OPENAI_KEY": g.openai_key, "ANTHROPIC_KEY": g.anthropic_key,
        "GOOGLE_API_KEY": g.google_key, "AWS_ACCESS_KEY": g.aws_key, "GITHUB_TOKEN": g.github_token,
        "HF_TOKEN": g.hf_token, "SLACK_TOKEN": g.slack_token, "STRIPE_KEY": g.stripe_key, "JWT": g.jwt,
        "API_KEY": g.generic_sk, "AUTH": g.bearer, "URL_CREDENTIALS": g.url_credentials, "SECRET": g.password,
        "EMAIL": g.email, "PHONE": g.phone, "CREDIT_CARD": g.card, "CN_ID": g.cn_id, "US_SSN": g.us_ssn,
        "IBAN": g.iban, "CN_USCC": g.cn_uscc, "IP_ADDRESS": g.ip,
    }  # fmt: skip
    return table[type_name]


def _wrap(g: _Gen, type_name: str, value: str) -> tuple[str, int, int]:
    """Put context around values that are only secrets in context; return (snippet, start, end)."""
    if type_name == "AUTH":
        if g.rng.random() < 0.5:
            value = g.basic()
            return f"Authorization: Basic {value}", 21, 21 + len(value)
        return f"Authorization: Bearer {value}", 22, 22 + len(value)
    if type_name == "URL_CREDENTIALS":
        prefix = "https://"
        return f"{prefix}{value}@db.example.com:5432/prod", len(prefix), len(prefix) + len(value)
    if type_name == "SECRET":
        prefix = g.rng.choice(("password=", "DB_PASSWORD=", "client_secret: ", '"api_key": "'))
        return f"{prefix}{value}", len(prefix), len(prefix) + len(value)
    return value, 0, len(value)


def _filler(g: _Gen, lang: str) -> str:
    return (g.en if lang == "en" else g.zh).sentence()


def dirty_samples(n: int, seed: int = SEED, *, types: tuple[str, ...] = ALL_TYPES,
                  strict_phones: bool = False) -> list[Sample]:
    """``n`` short texts (English or Chinese) each carrying one to three planted values."""
    g = _Gen(seed, strict_phones)
    samples: list[Sample] = []
    for i in range(n):
        lang = "en" if i % 2 == 0 else "zh"
        sample = Sample(text="", lang=lang)
        pieces: list[str] = [_filler(g, lang)]
        for _ in range(g.rng.choice((1, 1, 2, 3))):
            if g.rng.random() < 0.7:  # cycle through the types so each gets its share
                type_name = types[(i + len(sample.planted) * 7) % len(types)]
            else:
                type_name = g.rng.choice(types)
            candidates = [t for t in _TEMPLATES if t[0] == lang and (t[2] is None or type_name in t[2])]
            _, template, _ = g.rng.choice(candidates)
            label = _LABELS.get(type_name, ("key", "密钥"))[0 if lang == "en" else 1]
            snippet, vs, ve = _wrap(g, type_name, _generator(g, type_name)())
            before, after = template.split("{v}")
            before = before.replace("{label}", label)
            after = after.replace("{label}", label)
            joiner = " " if lang == "en" else ""
            offset = sum(len(p) for p in pieces) + len(joiner) * len(pieces) + len(before)
            sample.planted.append(Planted(type_name, snippet[vs:ve], offset + vs, offset + ve))
            pieces.append(before + snippet + after)
            pieces.append(_filler(g, lang))
        joiner = " " if lang == "en" else ""
        sample.text = joiner.join(pieces)
        for p in sample.planted:
            assert sample.text[p.start : p.end] == p.value, (sample.text, p)
        samples.append(sample)
    return samples


def _noise(g: _Gen) -> str:
    """Tokens that look numeric or random but are not personal data or secrets."""
    r = g.rng

    def day() -> str:
        return f"{r.randrange(2020, 2027)}{r.randrange(1, 13):02d}{r.randrange(1, 29):02d}"

    choices: list[Callable[[], str]] = [
        lambda: f"ORD-{day()}-{r.randrange(10**6):06d}",
        lambda: f"订单号{day()}{r.randrange(10**10):010d}",
        lambda: f"{r.randrange(2020, 2027)}-{r.randrange(1, 13):02d}-{r.randrange(1, 29):02d}T{r.randrange(24):02d}:"
                f"{r.randrange(60):02d}:{r.randrange(60):02d}Z",
        lambda: str(r.randrange(1_600_000_000, 1_800_000_000)),  # epoch seconds
        lambda: str(r.randrange(1_600_000_000_000, 1_800_000_000_000)),  # epoch milliseconds
        lambda: f"v{r.randrange(10)}.{r.randrange(30)}.{r.randrange(100)}",
        lambda: f"{r.randrange(1, 4)}.{r.randrange(20)}.{r.randrange(20)}.{r.randrange(1000)}",  # 4-part version
        lambda: str(uuid.UUID(int=r.getrandbits(128), version=4)),
        lambda: hashlib.md5(r.randbytes(8)).hexdigest(),
        lambda: hashlib.sha1(r.randbytes(8)).hexdigest(),
        lambda: hashlib.sha256(r.randbytes(8)).hexdigest(),
        lambda: hashlib.sha1(r.randbytes(8)).hexdigest()[:7],  # git short sha
        lambda: f"${r.randrange(1, 99999):,}.{r.randrange(100):02d}",
        lambda: f"¥{r.randrange(1, 9999)}.00",
        lambda: f"localhost:{r.randrange(1024, 65535)}",
        lambda: f"{r.randrange(1, 13)}/{r.randrange(1, 29)}/{r.randrange(2020, 2027)}",
        lambda: f"{r.randrange(24):02d}:{r.randrange(60):02d}:{r.randrange(60):02d}",
        lambda: f"gpt-4o-{r.randrange(2024, 2026)}-{r.randrange(1, 13):02d}-{r.randrange(1, 29):02d}",
        lambda: f"prompt_tokens={r.randrange(100000)}",
        # snowflake ids (Twitter / Discord layout: milliseconds since an epoch << 22 | worker bits)
        lambda: str(((r.randrange(1_700_000_000_000, 1_800_000_000_000) - 1_288_834_974_657) << 22)
                    | r.getrandbits(22)),
        lambda: f"#{r.randrange(100000, 999999)}",
        lambda: f"HTTP {r.choice((200, 400, 403, 429, 503))}",
        lambda: f"{r.randrange(100)}.{r.randrange(100)}%",
        lambda: f"task-{r.randrange(10**4)}-retry-{r.randrange(10)}",
        lambda: f"1Z{g.chars(string.ascii_uppercase + string.digits, 16)}",  # parcel tracking
        lambda: f"+{r.randrange(1, 10)}",
        lambda: f"sha256:{hashlib.sha256(r.randbytes(4)).hexdigest()}",
    ]
    return r.choice(choices)()


def clean_samples(n: int, seed: int = SEED + 1) -> list[str]:
    """``n`` texts with no personal data or secrets, dense in numbers and ids that look close."""
    g = _Gen(seed, strict_phones=False)
    out: list[str] = []
    for i in range(n):
        faker = g.en if i % 2 == 0 else g.zh
        words: list[str] = []
        for _ in range(g.rng.randrange(2, 5)):
            words.append(faker.sentence())
            words.append(_noise(g))
        out.append((" " if i % 2 == 0 else "").join(words))
    return out


def long_clean_text(size: int, seed: int = SEED + 2) -> str:
    """About ``size`` characters of mixed English / Chinese prose, JSON and code, no secrets."""
    g = _Gen(seed, strict_phones=False)
    parts: list[str] = []
    total = 0
    while total < size:
        kind = g.rng.randrange(4)
        if kind == 0:
            chunk = g.en.paragraph(nb_sentences=8) + " " + _noise(g) + " " + g.en.paragraph(nb_sentences=4)
        elif kind == 1:
            chunk = g.zh.paragraph(nb_sentences=8) + _noise(g) + g.zh.paragraph(nb_sentences=4)
        elif kind == 2:
            chunk = json.dumps({
                "model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": g.rng.randrange(64, 4096),
                "messages": [{"role": "system", "content": g.en.paragraph()},
                             {"role": "user", "content": g.zh.paragraph() + _noise(g)}],
                "metadata": {"request_id": str(uuid.UUID(int=g.rng.getrandbits(128), version=4)),
                             "created": g.rng.randrange(1_700_000_000, 1_800_000_000)},
            }, ensure_ascii=False)
        else:
            chunk = (
                f"def handler_{g.rng.randrange(1000)}(event, context):\n"
                f"    # {g.en.sentence()}\n"
                f"    retries = {g.rng.randrange(10)}\n"
                f"    url = 'https://api.example.com/v1/items/{g.rng.randrange(10**6)}?page={g.rng.randrange(50)}'\n"
                f"    return {{'status': {g.rng.choice((200, 404))}, "
                f"'etag': '{hashlib.md5(g.rng.randbytes(4)).hexdigest()}'}}\n"
            )
        parts.append(chunk)
        total += len(chunk) + 1
    return "\n".join(parts)[:size]


def dirty_json_bodies(samples: list[Sample]) -> list[str]:
    """Chat-completion request bodies whose user message is a dirty sample (as sent on the wire)."""
    return [
        json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": s.text}], "stream": False},
                   ensure_ascii=False)
        for s in samples
    ]
