"""Built-in detection rules (their validators are in ``_validators``).

Every pattern here is compiled in ASCII mode (so ``\\b``, ``\\w`` and ``\\d`` never match
Chinese or other non-ASCII characters, and a secret glued to Chinese text is still found)
and uses bounded quantifiers only.  Each pattern starts with a negative look-behind on the
characters its first run consumes, so two scans never overlap and matching is linear in the
length of the input.

A rule may name a capture group ``secret``: only that group is replaced (for example the
credential after ``Bearer``), the rest of the match is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._validators import (
    Validator,
    _assignment_ok,
    _basic_ok,
    _e164_ok,
    _has_entropy,
    _ipv6_ok,
    _mixed_token,
    _not_ascii,
    _phone_nanp_ok,
    card_ok,
    cn_id_ok,
    cn_uscc_ok,
    iban_in_groups_ok,
    us_ssn_ok,
)

__all__ = [
    "BUILTIN_RULES", "CASELESS_RULES", "IP_RULES", "NUMERIC_RULES", "PREFILTER_SUPERSETS", "RUNLESS_RULES",
    "UNICODE_RULES",
    "Rule",
]  # fmt: skip

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
