"""A generated adversarial corpus: secrets and personal data in the forms a plain scan misses.

Each item is a prompt (English or Chinese) holding one secret value written in one form (plain,
full-width digits, percent-encoded once or twice, JSON inside a JSON string under a secret key
name, an internationalised e-mail), and the plain value, which must appear nowhere the sidecar
writes, in any of those forms and in no 8-character piece.
"""

from __future__ import annotations

import json
import random
import string
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote, unquote

_FULLWIDTH = {ord(c): chr(0xFF10 + int(c)) for c in string.digits}
_CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


@dataclass(frozen=True)
class Item:
    kind: str  # what the value is
    form: str  # how it is written
    lang: str
    text: str  # the prompt
    value: str  # the plain value: must not leak


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def _cn_id(rng: random.Random) -> str:
    body = rng.choice(["110105", "310104", "440305", "510107"]) + f"{rng.randint(1950, 2005)}"
    body += f"{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    total = sum(int(c) * w for c, w in zip(body, _CN_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def values(rng: random.Random) -> list[tuple[str, str]]:
    alnum = string.ascii_letters + string.digits
    return [
        ("card", _luhn_complete("4", 16, rng)),
        ("cn_mobile", "1" + rng.choice("3456789") + "".join(rng.choice(string.digits) for _ in range(9))),
        ("cn_id", _cn_id(rng)),
        ("email", f"user{rng.randint(100, 999)}@example.org"),
        ("aws_key", "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))),
        ("google_key", "AIzaSy" + "".join(rng.choice(alnum) for _ in range(33))),
        ("openai_key", "sk-proj-" + "".join(rng.choice(alnum) for _ in range(40))),
    ]


_IDN_EMAILS = ("josé.garcía@correo.es", "张三@例子.中国", "用户@公司。中国", "müller@bücher.de", "иван@пример.рф",
               "li.wei@xn--fiqs8s.xn--fiqz9s")
_SECRET_KEYS = ("otp", "pin", "cvv", "session_id", "signature", "cookie", "authorization", "password")
_EN = ("Please check {v} for me.", "debug: retry with {v} now", "My details: {v}")
_ZH = ("请帮我查一下{v}谢谢", "我的信息是{v}。", "（{v}）", "联系我{v}，订单已发货。")


def _forms(kind: str, value: str) -> list[tuple[str, str]]:
    out = [("plain", value)]
    if any(c.isdigit() for c in value):
        out.append(("fullwidth", value.translate(_FULLWIDTH)))
    out.append(("percent", quote(value, safe="")))
    out.append(("percent_twice", quote(quote(value, safe=""), safe="")))
    out.append(("query", f"https://gw.example.com/v1/x?notify={quote(value, safe='')}&ok=1"))
    return out


def corpus(seed: int = 13) -> list[Item]:
    rng = random.Random(seed)
    items: list[Item] = []
    for kind, value in values(rng):
        for form, written in _forms(kind, value):
            for lang, templates in (("en", _EN), ("zh", _ZH)):
                items.append(Item(kind, form, lang, rng.choice(templates).format(v=written), value))
    for email in _IDN_EMAILS:
        items.append(Item("idn_email", "plain", "zh", rng.choice(_ZH).format(v=email), email))
        items.append(Item("idn_email", "percent", "en", rng.choice(_EN).format(v=quote(email)), email))
    for key in _SECRET_KEYS:
        code = "".join(rng.choice(string.digits) for _ in range(6)) + rng.choice(string.ascii_letters) * 2
        inner = json.dumps({"user": "alice", key: code})
        items.append(Item("json_in_json", key, "en", inner, code))
    return items


def fold(text: str) -> str:
    """The forms the sidecar writes, undone (full-width, percent-encoding): where a leak would show."""
    text = unicodedata.normalize("NFKC", text)
    for _ in range(2):
        text = unquote(text)
    return text


def leaks(item_value: str, written: str) -> list[str]:
    """Pieces of the value (whole, or any 8 characters of it) found in what was written."""
    plain = fold(written)
    found = [item_value] if item_value in plain or item_value in written else []
    if "@" in item_value:  # an address: its parts (an 8-character piece of "example.org" is everywhere)
        local = item_value.split("@", 1)[0]
        return found + ([local] if len(local) >= 6 and local in plain else [])
    compact = item_value.replace(" ", "")
    found += [compact[i: i + 8] for i in range(0, max(len(compact) - 7, 0))
              if compact[i: i + 8] in plain]
    return found
