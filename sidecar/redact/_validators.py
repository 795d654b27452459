"""Validators: pure functions that confirm a candidate before it is masked (check digits, issuer prefixes,
country lengths, token shape); facts cited from the public standards. ``VALIDATORS`` names the ones a user
rule may ask for in ``SIDECAR_REDACT_RULES``."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable

Validator = Callable[[str], bool]

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
