"""Built-in detection rules and the validators that confirm numeric candidates.

Every pattern here is compiled in ASCII mode (so ``\\b``, ``\\w`` and ``\\d`` never match
Chinese or other non-ASCII characters, and a secret glued to Chinese text is still found)
and uses bounded quantifiers only.  Each pattern starts with a negative look-behind on the
characters its first run consumes, so two scans never overlap and matching is linear in the
length of the input.

A rule may name a capture group ``secret``: only that group is replaced (for example the
credential after ``Bearer``), the rest of the match is kept.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "BUILTIN_RULES", "CASELESS_RULES", "IP_RULES", "NUMERIC_RULES", "PREFILTER_SUPERSETS", "RUNLESS_RULES",
    "UNICODE_RULES",
    "VALIDATORS", "Rule", "iban_ok", "luhn_ok",
]  # fmt: skip

Validator = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class Rule:
    """One detector.

    ``name`` is the upper-case type used in placeholders (``<NAME:hmac8>``); ``pattern`` is
    regex source compiled with the ASCII flag (bounded quantifiers only: ``*``, ``+`` and
    ``{n,}`` are rejected for user rules); ``validator`` confirms a candidate (the text that
    will be masked) before it is masked; ``literals`` are cheap pre-filter strings: the rule
    runs only if at least one of them occurs in the text (case-sensitive; empty = always run).
    """

    name: str
    pattern: str
    validator: Validator | None = None
    literals: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# validators (pure functions of the candidate text; facts cited from the public standards)
# ---------------------------------------------------------------------------------------------


_NOT_DIGITS = re.compile(r"[^0-9]+")
# a digit doubled, minus 9 when over 9 (the Luhn step), by the digit's character (looked up with
# map, no conversion to int and no generator)
_LUHN_DOUBLED = {"0": 0, "1": 2, "2": 4, "3": 6, "4": 8, "5": 1, "6": 3, "7": 5, "8": 7, "9": 9}


def _only_digits(value: str) -> str:
    if value.isascii() and value.isdigit():
        return value  # already digits only (most card candidates): no substitution to run
    return _NOT_DIGITS.sub("", value)


def luhn_ok(value: str) -> bool:
    """Luhn (mod 10) check over the digits of ``value`` (separators ignored)."""
    digits = _only_digits(value)
    if not digits:
        return False
    # from the right: digits in odd places count as they are, those in even places doubled
    total = sum(map(int, digits[-1::-2])) + sum(map(_LUHN_DOUBLED.__getitem__, digits[-2::-2]))
    return total % 10 == 0


# Issuer prefixes of the card networks whose numbers are 13-19 digits (Visa 4, Mastercard
# 51-55 / 2221-2720, Amex 34 37, Diners 30 36 38 39, Discover 6011 64 65, JCB 35 and the old
# 15-digit 1800 / 2131, UnionPay 62, Maestro 50 56-69).  Numbers starting 0, 7, 8 or 9 (and
# most starting 1) are order numbers, timestamps and ids far more often than cards.
def _card_prefix_ok(digits: str) -> bool:
    first = digits[0]
    if first in "3456":
        return True
    if first == "2":
        return "2221" <= digits[:4] <= "2720" or digits.startswith("2131")
    return digits.startswith("1800")


def _one_card_ok(digits: str) -> bool:
    if not 13 <= len(digits) <= 19 or len(set(digits)) < 2:
        return False
    return _card_prefix_ok(digits) and luhn_ok(digits)


def card_ok(value: str) -> bool:
    """Payment card: 13-19 digits, a known issuer prefix, Luhn valid, not one repeated digit.

    The pattern takes as many digit groups as it can, so a card next to another group of digits
    (``2 4111 1111 1111 1111 0``) is also looked for among the groups: the mask then covers the
    extra groups too, which over-masks a little rather than miss a card."""
    digits = _only_digits(value)
    if _one_card_ok(digits):
        return True
    if len(set(digits)) < 2:
        return False  # nor is any run of its groups
    groups = [g for g in _CARD_GROUP_BREAK.split(value) if g]
    if len(groups) < 2:
        return False
    return _card_in_groups(digits, groups)


_CARD_GROUP_BREAK = re.compile(r"[ -]")


def _card_in_groups(digits: str, groups: list[str]) -> bool:
    """Whether a run of whole ``groups`` (their ``digits`` joined), shorter than all of them, is a
    card.  Each run is checked in constant time from running sums: on a rejected candidate of
    single-digit groups (an attacker's ``4 0 4 0 …``) there are ~50 runs of card length."""
    # luhn[p][k]: Luhn weight sum of digits[:k] when digit k-1 has parity p from a run's end
    plain, doubled = [0], [0]
    for k, c in enumerate(digits):
        d = ord(c) - 48
        plain.append(plain[-1] + (d if k % 2 == 0 else _LUHN_DOUBLED[c]))
        doubled.append(doubled[-1] + (_LUHN_DOUBLED[c] if k % 2 == 0 else d))
    bounds = [0]
    for g in groups:
        bounds.append(bounds[-1] + len(g))
    last = len(groups)
    for i in range(last):
        a = bounds[i]
        if digits[a] not in "123456":
            continue
        for j in range(i + 1, last + 1):
            b = bounds[j]
            if b - a < 13:
                continue
            if b - a > 19:
                break
            # the run's last digit counts plain: digits with index of its parity count plain
            sums = plain if (b - 1) % 2 == 0 else doubled
            if (i, j) != (0, last) and (sums[b] - sums[a]) % 10 == 0 and _card_prefix_ok(digits[a:b]) \
                    and len(set(digits[a:b])) > 1:
                return True
    return False


_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_ID_CHECK = "10X98765432"


# Province-level codes that open a Chinese administrative division code (GB/T 2260).
_CN_PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42",
    "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82",
})  # fmt: skip


def cn_id_ok(value: str) -> bool:
    """Chinese resident identity number (GB 11643): 18 chars, ISO 7064 MOD 11-2 check char."""
    if len(value) != 18 or not value[:17].isdigit() or value[:2] not in _CN_PROVINCES:
        return False
    total = sum((ord(c) - 48) * w for c, w in zip(value[:17], _CN_ID_WEIGHTS, strict=True))
    return _CN_ID_CHECK[total % 11] == value[17].upper()


_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I O Z S V
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def cn_uscc_ok(value: str) -> bool:
    """Chinese unified social credit code (GB 32100): 18 chars, MOD 31 check char."""
    if len(value) != 18 or (value[2:4] not in _CN_PROVINCES and value[2:4] != "10"):
        return False
    total = 0
    for ch, w in zip(value[:17], _USCC_WEIGHTS, strict=True):
        idx = _USCC_ALPHABET.find(ch)
        if idx < 0:
            return False
        total += idx * w
    return _USCC_ALPHABET[(31 - total % 31) % 31] == value[17]


def us_ssn_ok(value: str) -> bool:
    """US SSN: area not 000, 666 or 900-999; group not 00; serial not 0000."""
    digits = _only_digits(value)
    if len(digits) != 9:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return len(set(digits)) > 1


# Lengths of IBANs by country (ISO 13616 registry); unknown countries fall back to 15-34.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def iban_ok(value: str) -> bool:
    """IBAN: country length (when known) and the ISO 7064 mod 97 check (remainder 1)."""
    compact = value.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum() or not compact.isascii():
        return False
    expected = _IBAN_LENGTHS.get(compact[:2])
    if expected is not None and expected != len(compact):
        return False
    # letters become two digits each (A = 10 ... Z = 35): one translate, not a loop in Python
    return int((compact[4:] + compact[:4]).translate(_IBAN_DIGITS)) % 97 == 1


_IBAN_DIGITS = {ord(c): str(int(c, 36)) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


# The token validators run on every candidate key: on ASCII (all the rules' tokens are) one
# compiled search answers what a character-by-character loop in Python does, at a fraction of the
# cost; other text keeps the loop (``isdigit`` and ``isupper`` read Unicode there).
_DIGIT_OR_UPPER = re.compile(r"[0-9A-Z]")
_DIGIT_OR_PUNCT = re.compile(r"[0-9._~+/=-]")
_UPPER = re.compile(r"[A-Z]")


def iban_in_groups_ok(value: str) -> bool:
    """An IBAN, or one written in groups and followed by more groups (``BE68 5390 0754 7034 1234``:
    the pattern takes every group it can).  The mask then covers the extra groups too, which
    over-masks a little rather than miss the IBAN."""
    if iban_ok(value):
        return True
    cut = value.rfind(" ")
    while cut > 4:
        if iban_ok(value[:cut]):
            return True
        cut = value.rfind(" ", 0, cut)
    return False


def _has_entropy(value: str) -> bool:
    """A random token (not a word or kebab-case slug): it has a digit or an upper-case letter."""
    if value.isascii():
        return _DIGIT_OR_UPPER.search(value) is not None
    return any(c.isdigit() or c.isupper() for c in value)


def _mixed_token(value: str) -> bool:
    """A credential-looking token: a digit or punctuation, or at least two inner capitals."""
    if value.isascii():
        if _DIGIT_OR_PUNCT.search(value) is not None:
            return True
        first = _UPPER.search(value, 1)
        return first is not None and _UPPER.search(value, first.end()) is not None
    if any(c.isdigit() or c in "._~+/=-" for c in value):
        return True
    return sum(1 for c in value[1:] if c.isupper()) >= 2


def _basic_ok(value: str) -> bool:
    """``Basic`` credentials: base64 of ``user:password``."""
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in raw


def _assignment_ok(value: str) -> bool:
    low = value.lower()
    # the words a config or a header uses in place of a value (and the auth scheme before one)
    return low not in {"true", "false", "null", "none", "undefined", "required", "optional", "string", "bearer",
                       "basic", "digest", "negotiate"}


def _not_ascii(value: str) -> bool:
    """Only what the ASCII e-mail rule cannot see (its matches are that rule's)."""
    return not value.isascii()


def _ipv6_ok(value: str) -> bool:
    if sum(1 for c in value if c != ":") < 2:
        return False
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def _phone_nanp_ok(value: str) -> bool:
    for mark in ("x", "e", "#"):  # drop an extension (x123, ext. 123, #123)
        value = value.split(mark, 1)[0]
    digits = _only_digits(value)
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    elif len(digits) == 13 and digits.startswith("001"):
        digits = digits[3:]
    if len(digits) != 10 or digits[0] in "01" or digits[3] in "01":
        return False
    return digits[1:3] != "11" and digits[4:6] != "11" and len(set(digits)) > 2


def _e164_ok(value: str) -> bool:
    digits = _only_digits(value)
    return 8 <= len(digits) <= 15 and len(set(digits)) > 2


#: Validators by the name users give in ``SIDECAR_REDACT_RULES`` (``"validator": "luhn"``).
VALIDATORS: dict[str, Validator] = {
    "luhn": luhn_ok,
    "card": card_ok,
    "cn_id": cn_id_ok,
    "cn_uscc": cn_uscc_ok,
    "us_ssn": us_ssn_ok,
    "iban": iban_ok,
    "entropy": _has_entropy,
}

# ---------------------------------------------------------------------------------------------
# the rules, in priority order (when two matches cover the same text, the longer wins, then
# the earlier rule in this list)
# ---------------------------------------------------------------------------------------------

_B62 = "A-Za-z0-9"
_B64URL = "A-Za-z0-9_-"
# Not glued to a letter or digit (Chinese is fine: ASCII mode).  A '-' or '_' right before or after
# a key is punctuation here (``-sk-proj-…``, ``ghp_…_``): the key's prefix already says what it is.
# The one exception is a key inside a longer run of token characters joined by '-' / '_' (``a-b_eyJ…``):
# there ``_NB_STRICT`` keeps the scans linear for the long-bodied JWT.
_NB = "(?<![A-Za-z0-9])"
_NB_STRICT = "(?<![A-Za-z0-9])(?<![A-Za-z0-9_-][_-])"
_NA = "(?![A-Za-z0-9])"
_ND = "(?<![0-9A-Za-z])"  # numeric candidates: no digit or ASCII letter on either side
_NDA = "(?![0-9A-Za-z])"
# after a secret's name: an optional (escaped) closing quote, ':' or '=', an optional opening quote,
# then the value (not one of our own placeholders' tags)
_ASSIGNED = (
    r"(?:\\?[\"'])?[ \t]{0,3}[:=][ \t]{0,3}(?:\\?[\"'])?(?![0-9a-f]{8}>)"
    r"(?P<secret>[A-Za-z0-9!#$%&()*+./:=?@^_`{|}~\[\]-]{4,512})"
)
# Letters of alphabetic scripts that mix with ASCII in a name (Latin, Greek, Cyrillic, Hebrew,
# Arabic, Indic, Thai) and of the CJK scripts (kana, ideographs, Hangul), which do not.
_ALPHA = r"\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\u0370-\u03FF\u0400-\u052F\u0590-\u06FF\u0900-\u0EFF\u1E00-\u1FFF"
_CJK = r"\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uAC00-\uD7AF\uF900-\uFAFF"
_EMAIL = (
    # the local part may open with '_', '-', '+', '%' (``_alice@``, ``-bob@``, ``(+carol@``); a '.'
    # before it is punctuation, not part of the address. After the domain, only a letter (the TLD
    # going on) rejects the match: ``bob@example.org-`` and ``bob@example.org0`` are found.
    r"(?<![A-Za-z0-9_%+-])[A-Za-z0-9_%+-][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]{1,63}\.){1,8}"
    r"(?:[A-Za-z]{2,24}|xn--[A-Za-z0-9-]{1,59})"  # an IDN top-level domain in its ASCII (punycode) form
    r"(?![A-Za-z])"
)
#: Looser patterns the one-pass prefilter (see _prefilter) scans for in place of a rule's own,
#: where the rule's is slow for it: each matches wherever the rule can (a superset), and the rule
#: then runs exactly as written.  An e-mail match always holds a local-part character, ``@``, a
#: first label and the dot after it, then the first character of another label or the TLD.
PREFILTER_SUPERSETS: dict[str, str] = {
    _EMAIL: r"[A-Za-z0-9._%+-]@[A-Za-z0-9-]{1,63}\.[A-Za-z0-9-]",
}

_INTL_EMAIL = (
    # local part: ASCII mixed with alphabetic letters (josé), or CJK with digits (张三), so a
    # CJK sentence glued to an ASCII address is not swallowed whole; at most 16 CJK characters
    rf"(?:(?<![A-Za-z0-9._%+{_ALPHA}-])[A-Za-z0-9._%+{_ALPHA}-]{{1,64}}"
    rf"|[0-9._%+{_CJK}-]{{1,16}})"
    # domain: labels of letters of any script, separated by '.' or the ideographic full stops
    rf"@(?:[A-Za-z0-9{_ALPHA}{_CJK}-]{{1,63}}[.\u3002\uFF0E\uFF61]){{1,8}}"
    rf"(?:xn--[A-Za-z0-9-]{{1,59}}|[A-Za-z]{{2,24}}|[{_ALPHA}{_CJK}]{{1,24}})(?![A-Za-z0-9-])"
)
_NANP_EXT = r"(?:[ ]?(?:x|ext\.?|#)[ ]?[0-9]{1,6})?"

_PRIVATE_KEY = Rule(
    "PRIVATE_KEY",
    # header, a body (base64, PEM headers, escaped newlines; a lone '-' is fine but never the
    # five of the footer), then the footer if present: an unterminated block is still masked.
    # The body is read a run of characters at a time (possessive, so linear): one character an
    # iteration cost ~55 us on a 2 KB key, runs ~16 us.
    r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[A-Za-z0-9+/=\s:,.()\\]{1,16384}+|-(?!----)){0,16384}"
    r"(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----)?",
    literals=("PRIVATE KEY",),
)
# the header alone for the prefilter: every block starts with it (a possessive repeat is not RE2
# syntax, and Hyperscan would widen the body anyway)
PREFILTER_SUPERSETS[_PRIVATE_KEY.pattern] = r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY"

_TEXT_BUILTINS: tuple[Rule, ...] = (
    _PRIVATE_KEY,
    Rule("ANTHROPIC_KEY", _NB + rf"sk-ant-[{_B64URL}]{{20,300}}" + _NA, literals=("sk-",)),
    Rule(
        "OPENAI_KEY",
        _NB + rf"sk-(?:proj|svcacct|admin|None)-[{_B64URL}]{{20,300}}" + _NA,
        literals=("sk-",),
    ),
    Rule("OPENAI_KEY", _NB + rf"sk-[{_B62}]{{16,64}}T3BlbkFJ[{_B62}]{{16,64}}" + _NA, literals=("sk-",)),
    Rule("GOOGLE_API_KEY", _NB + rf"AIza[{_B64URL}]{{35}}" + _NA, literals=("AIza",)),
    Rule("AWS_ACCESS_KEY", "(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])",
         literals=("AKIA", "ASIA", "ABIA", "ACCA")),
    Rule("GITHUB_TOKEN", _NB + rf"(?:ghp|gho|ghu|ghs|ghr)_[{_B62}]{{36,251}}" + _NA,
         literals=("gh",)),
    Rule("GITHUB_TOKEN", _NB + r"github_pat_[A-Za-z0-9_]{22,251}" + _NA, literals=("hub_pat_",)),
    Rule("HF_TOKEN", _NB + rf"hf_[{_B62}]{{30,64}}" + _NA, _has_entropy, literals=("hf_",)),
    Rule("SLACK_TOKEN", _NB + r"xox[abposre]-[A-Za-z0-9-]{10,250}" + _NA, _has_entropy, literals=("xox",)),
    Rule("SLACK_TOKEN", _NB + r"xapp-[0-9]-[A-Za-z0-9-]{10,250}" + _NA, literals=("xapp-",)),
    Rule("SLACK_WEBHOOK", r"hooks\.slack\.com/services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}/[A-Za-z0-9]{16,40}",
         literals=("hooks.slack",)),
    Rule("STRIPE_KEY", _NB + rf"(?:sk|rk)_(?:live|test)_[{_B62}]{{16,250}}" + _NA, literals=("k_live_", "k_test_")),
    Rule("STRIPE_KEY", _NB + rf"whsec_[{_B62}]{{24,250}}" + _NA, literals=("whsec_",)),
    Rule(
        "JWT",
        _NB_STRICT + rf"eyJ[{_B64URL}]{{5,4096}}\.[{_B64URL}]{{2,16384}}\.[{_B64URL}]{{0,4096}}" + _NA,
        literals=("eyJ",),
    ),
    # generic sk- keys (OpenAI legacy without marker, DeepSeek, Moonshot and other compatible APIs)
    Rule("API_KEY", _NB + rf"sk-[{_B64URL}]{{20,300}}" + _NA, _has_entropy, literals=("sk-",)),
    Rule(
        "URL_CREDENTIALS",
        r"://(?P<secret>[A-Za-z0-9._~%!$&'()*+,;=-]{1,256}:[A-Za-z0-9._~%!$&()*+,;=:\[\]^`{|}-]{1,256})@",
        literals=("://",),
    ),
    Rule(
        "AUTH",
        r"(?<![A-Za-z0-9])(?i:bearer)[ ]{1,4}(?P<secret>[A-Za-z0-9._~+/-]{12,8192}={0,2})"
        r"(?![A-Za-z0-9._~+/=-])",
        _mixed_token,
        literals=("bearer",),
    ),
    Rule(
        "AUTH",
        r"(?<![A-Za-z0-9])(?i:basic)[ ]{1,4}(?P<secret>[A-Za-z0-9+/]{4,4096}={0,2})(?![A-Za-z0-9+/=])",
        _basic_ok,
        literals=("basic",),
    ),
    # key = value / "key": "value" assignments of secrets in pasted configs, env files, logs.  One rule
    # per key-name family: each opens with a word the regex module finds by its fast literal search
    # (one alternation of every name is tried at every letter, and anchoring on ':' / '=' pays a
    # look-behind at every colon of a JSON body).
    *(
        Rule("SECRET", r"(?<![A-Za-z0-9])(?i:" + names + ")" + _ASSIGNED, _assignment_ok, literals=literals)
        for names, literals in (
            ("pass(?:word|wd|phrase|code)", ("pass",)),
            ("pwd", ("pwd",)),
            ("(?:client[_-]?)?secret(?:[_-]?key)?", ("secret",)),
            ("(?:api|access|private)[_-]?key", ("key",)),
            ("(?:access|auth|refresh)[_-]?token", ("token",)),
            # one-time codes, PINs and card codes; session ids, signatures, cookies: also when a JSON
            # document sits escaped inside a JSON string (tool arguments), where no key walk sees it.
            # One rule a name: an alternation in front is tried at every letter (~20x slower).
            ("otp", ("otp",)),
            ("totp", ("totp",)),
            ("pin", ("pin",)),
            ("cvv2?", ("cvv",)),
            ("cvc2?", ("cvc",)),
            ("mfa[_-]?code", ("mfa",)),
            ("session[_-]?id", ("session",)),
            ("signature", ("signature",)),
            ("cookie", ("cookie",)),
            ("authorization", ("authorization",)),
        )
    ),
    Rule("EMAIL", _EMAIL, literals=("@",)),
    # e-mails with a non-ASCII local part or an internationalised (IDN) domain; scanned only in
    # texts that hold non-ASCII characters (see UNICODE_RULES)
    Rule("EMAIL", _INTL_EMAIL, _not_ascii, literals=("@",)),
)

# An IBAN needs only its two check digits: the letters of its account part may break every other
# digit run (``GB39WEST12AB34CD56EF78``), so it is the one numeric rule the windows cannot gate.
_IBAN = Rule(
    "IBAN",
    r"(?<![0-9A-Za-z])[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?(?![0-9A-Za-z])",
    iban_in_groups_ok,
)

#: Numeric rules: every match holds a run of seven or more digits and separators, so they scan only
#: the windows around such runs (``_windows``), and their literals are looked for in those windows;
#: except the ``RUNLESS_RULES``, which scan the whole text.
_NUMERIC_BUILTINS: tuple[Rule, ...] = (
    # Numeric rules check "no digit or letter before" with a trailing fixed-width look-behind where
    # the length is fixed: the regex module scans a plain character class much faster than a
    # pattern that opens with a look-behind.
    Rule(
        "CN_ID",
        r"[1-8][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]"
        r"(?<![0-9A-Za-z][\s\S]{18})" + _NDA,
        cn_id_ok,
    ),
    # unified social credit codes whose registering authority is a digit, then A / N / Y (split:
    # a first class holding letters is 3x slower to scan for)
    Rule(
        "CN_USCC",
        r"[1-9][1-9][1-8][0-9]{5}[0-9A-HJ-NPQRTUWXY]{10}(?<![0-9A-Za-z][\s\S]{18})" + _NDA,
        cn_uscc_ok,
    ),
    Rule(
        "CN_USCC",
        r"[ANY][1-9][1-8][0-9]{5}[0-9A-HJ-NPQRTUWXY]{10}(?<![0-9A-Za-z][\s\S]{18})" + _NDA,
        cn_uscc_ok,
        literals=("A", "N", "Y"),
    ),
    _IBAN,
    Rule(
        "CREDIT_CARD",
        # not glued to a letter or digit, and not the fraction of a decimal number (``0.4111…``, the
        # floats of an embedding); any other punctuation before it is fine (CSV ``alice,4111…``)
        r"[2-6](?<![0-9A-Za-z][2-6])(?<![0-9][.,][2-6])(?:[ -]?[0-9]){12,18}(?![0-9A-Za-z])",
        card_ok,
    ),
    Rule("CREDIT_CARD", r"(?<![0-9A-Za-z])(?<![0-9][.,])1800[0-9]{11}(?![0-9A-Za-z])", card_ok, literals=("1800",)),
    Rule(
        "US_SSN",
        # a '-' before is punctuation unless a digit run goes on through it (``12-123-45-6789``)
        r"[0-9]{3}-[0-9]{2}-[0-9]{4}(?<![0-9A-Za-z][\s\S]{11})(?<![0-9]-[\s\S]{11})(?![0-9A-Za-z]|-[0-9])",
        us_ssn_ok,
        literals=("-",),
    ),
    Rule(
        "US_SSN",
        r"[0-9]{3} [0-9]{2} [0-9]{4}(?<![0-9A-Za-z][\s\S]{11})(?<![0-9]-[\s\S]{11})(?![0-9A-Za-z]| [0-9])",
        us_ssn_ok,
        literals=(" ",),
    ),
    # Chinese mobiles: 1[3-9]x xxxx xxxx, optionally +86 / 0086, with spaces or dashes
    Rule(
        "PHONE",
        r"(?<![0-9A-Za-z+])(?:(?:\+|00)86[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}" + _NDA,
    ),
    # North American numbers.  Split in simple shapes (one alternation-led pattern is 20x slower);
    # overlapping matches are merged, so "+1-" and the number become one placeholder.
    Rule(
        "PHONE",
        r"[2-9][0-9]{2}[ .-][2-9][0-9]{2}[ .-][0-9]{4}(?<![0-9A-Za-z+][\s\S]{12})" + _NANP_EXT + _NDA,
        _phone_nanp_ok,
        literals=(" ", ".", "-"),
    ),
    Rule(
        "PHONE",
        r"\([2-9][0-9]{2}\)[ ]?[2-9][0-9]{2}[ .-][0-9]{4}" + _NANP_EXT + _NDA,
        _phone_nanp_ok,
        literals=("(",),
    ),
    Rule(
        "PHONE",
        r"(?<![0-9A-Za-z+])(?:\+|00)1[ .-]?\(?[2-9][0-9]{2}\)?[ .-]?[2-9][0-9]{2}[ .-]?[0-9]{4}" + _NANP_EXT + _NDA,
        _phone_nanp_ok,
        literals=("+", "00"),
    ),
    # bare 10-digit North American numbers: valid area code (middle digit not 9, not N11) and
    # exchange (not N11); a 10-digit id of that shape is masked too (over-redaction, not a leak)
    Rule("PHONE", r"[2-9][0-8][0-9][2-9][0-9]{6}(?<![0-9A-Za-z+][\s\S]{10})" + _NDA, _phone_nanp_ok),
    # any compact E.164 number: +<country><subscriber>, 8-15 digits
    Rule("PHONE", r"(?<![0-9A-Za-z+])\+[1-9][0-9]{7,14}(?![0-9A-Za-z])", _e164_ok, literals=("+",)),
)
BUILTIN_RULES: tuple[Rule, ...] = _TEXT_BUILTINS + _NUMERIC_BUILTINS

_IPV4 = Rule(
    "IP_ADDRESS",
    r"(?<![0-9A-Za-z.])(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?![0-9A-Za-z]|\.[0-9])",
    literals=(".",),
)
IP_RULES: tuple[Rule, ...] = (
    _IPV4,
    Rule(
        "IP_ADDRESS",
        r"(?<![0-9A-Za-z:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Za-z:])",
        _ipv6_ok,
        literals=(":",),
    ),
)

#: The rules that scan only the number windows (the shortest IPv4 address, 1.1.1.1, is a run of seven).
NUMERIC_RULES: frozenset[Rule] = frozenset((*_NUMERIC_BUILTINS, _IPV4))

#: Numeric rules whose matches need not hold a run of seven digits: never gated by the windows.
RUNLESS_RULES: frozenset[Rule] = frozenset((_IBAN,))

#: Rules that can only match in a text holding non-ASCII characters: skipped on ASCII texts.
UNICODE_RULES: frozenset[Rule] = frozenset(rule for rule in BUILTIN_RULES if rule.validator is _not_ascii)

#: Rules that match their names in any case (``Bearer``, ``PassWord=``): their literals are
#: lower-case and looked up in the lower-cased text.
CASELESS_RULES: frozenset[Rule] = frozenset(
    rule for rule in BUILTIN_RULES if rule.name in ("AUTH", "SECRET")
)
