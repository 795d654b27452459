"""A generated adversarial corpus: secrets and personal data in the forms a plain scan misses.

Each item is a prompt (English or Chinese) holding one secret value written in one form (plain,
full-width digits, percent-encoded once or twice, JSON inside a JSON string under a secret key
name, an internationalised e-mail; invisible characters inside it, HTML character references,
card digit groups split by no-break or thin spaces, a key broken over two lines, punctuation
glued before it, a CSV field), and the plain value, which must appear nowhere the sidecar writes,
in any of those forms and in no 8-character piece.
"""

from __future__ import annotations

import html
import json
import random
import re
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


# Invisible characters (format characters and other default-ignorable code points) a value can
# carry inside it and still look whole on screen.
INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u034f", "\ufe0f", "\u2062",
             "\U000e0041")
# Spaces that look like a space in a card number and are not ' '.
ODD_SPACES = ("\u00a0", "\u2009", "\u202f", "\u3000", "\u2007")
_PUNCTUATION = "_-+%.,;:(/'\"#!$&*=?@[^`{|~<>"


def _hidden_forms(kind: str, value: str, rng: random.Random) -> list[tuple[str, str]]:
    """The value hidden from a plain pattern: one line an item (one language each, chosen at random)."""
    cuts = sorted(rng.sample(range(1, len(value)), 3))
    zw = "".join(value[a:b] + rng.choice(INVISIBLE) for a, b in zip([0, *cuts], cuts, strict=False)) + value[cuts[-1]:]
    entity = "".join(f"&#{ord(c)};" if c == "@" or rng.random() < 0.3 else c for c in value)
    out = [("invisible", zw), ("html_entity", entity)]
    if "@" in value:
        out.append(("html_named", value.replace("@", "&commat;").replace(".", "&period;")))
    if kind == "card":
        space = rng.choice(ODD_SPACES)
        out.append(("odd_space", space.join(value[i: i + 4] for i in range(0, len(value), 4))))
        out.append(("csv", f"name,card,exp\nalice,{value},12/27"))
    if kind.endswith("_key"):
        cut = rng.randrange(4, len(value) - 1)
        out.append(("line_break", value[:cut] + rng.choice(("\n", "\r\n")) + value[cut:]))
    out.append(("punct_before", rng.choice(_PUNCTUATION) + value))
    return out


def corpus(seed: int = 13) -> list[Item]:
    rng = random.Random(seed)
    items: list[Item] = []
    for kind, value in values(rng):
        for form, written in _forms(kind, value):
            for lang, templates in (("en", _EN), ("zh", _ZH)):
                items.append(Item(kind, form, lang, rng.choice(templates).format(v=written), value))
        for form, written in _hidden_forms(kind, value, rng):
            lang, templates = rng.choice((("en", _EN), ("zh", _ZH)))
            items.append(Item(kind, form, lang, rng.choice(templates).format(v=written), value))
    for email in _IDN_EMAILS:
        items.append(Item("idn_email", "plain", "zh", rng.choice(_ZH).format(v=email), email))
        items.append(Item("idn_email", "percent", "en", rng.choice(_EN).format(v=quote(email)), email))
    for key in _SECRET_KEYS:
        code = "".join(rng.choice(string.digits) for _ in range(6)) + rng.choice(string.ascii_letters) * 2
        inner = json.dumps({"user": "alice", key: code})
        items.append(Item("json_in_json", key, "en", inner, code))
    return items


_HIDING = re.compile("[" + "".join(INVISIBLE) + "\u2000-\u200f\u202a-\u202e\u2060-\u206f]|\r?\n")


def fold(text: str) -> str:
    """The forms the sidecar writes, undone (full-width, percent-encoding, invisible characters, HTML
    character references, line breaks): where a leak would show."""
    text = unicodedata.normalize("NFKC", html.unescape(text))
    for _ in range(2):
        text = unquote(text)
    return _HIDING.sub("", text)


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
