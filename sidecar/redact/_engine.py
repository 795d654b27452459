"""The redaction engine: find secrets and personal data, replace them with keyed placeholders."""

from __future__ import annotations

import functools
import hashlib
import hmac
import importlib
import itertools
import json
import re as _stdre
import sys
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, NamedTuple
from urllib.parse import unquote

from ._bound import MARGIN, cut_kept, window_end
from ._errors import RedactionError
from ._prefilter import Prefilter, superset
from ._prefilter import build as build_prefilter
from ._rules import (
    BUILTIN_RULES,
    CASELESS_RULES,
    IP_RULES,
    NUMERIC_RULES,
    PREFILTER_SUPERSETS,
    UNICODE_RULES,
    VALIDATORS,
    Rule,
)  # fmt: skip
from ._views import compat_fold, may_have_views, views
from ._windows import NumericView, numeric_view

__all__ = ["REGEX_ENGINE", "Detection", "Redactor", "Summary", "check_rule", "parse_rules"]

Summary = dict[str, int]

# The third-party `regex` module: about twice as fast as `re` on these rules, and it gives match
# time-outs (user rules) and backward matching (the number windows).
_rx: Any = importlib.import_module("regex")
REGEX_ENGINE = "regex"

#: Largest repeat count accepted in a user pattern (``{n,m}`` with m above this is rejected).
MAX_REPEAT = 16_384
#: Time budget for a user rule on one text: this many seconds plus one second per MB.
USER_RULE_TIMEOUT_S = 1.0

_RULE_NAME = _stdre.compile(r"[A-Z][A-Z0-9_]{0,39}")
_REPEAT = _stdre.compile(r"\{(\d*)(,?)(\d*)\}")


class Detection(NamedTuple):
    """One span that will be replaced: ``text[start:end]`` becomes a ``<type:hmac8>`` placeholder."""

    start: int
    end: int
    type: str


class _Compiled(NamedTuple):
    name: str
    regex: Any
    validator: Callable[[str], bool] | None
    literals: tuple[str, ...]
    group: str | None
    user: bool
    numeric: bool
    caseless: bool
    min_len: int
    unicode: bool


# ---------------------------------------------------------------------------------------------
# rule checking (user rules are checked the same way built-ins are tested)
# ---------------------------------------------------------------------------------------------


def _unbounded(pattern: str) -> str | None:
    """Describe the first unbounded (or oversized) quantifier of ``pattern``; ``None`` if all bounded."""
    i, n = 0, len(pattern)
    after_quantifier = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            after_quantifier = False
            continue
        if c == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            if i < n and pattern[i] == "]":
                i += 1
            while i < n and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
            i += 1
            after_quantifier = False
            continue
        if c == "(" and pattern.startswith("(?#", i):
            end = pattern.find(")", i)
            i = n if end < 0 else end + 1
            continue
        if c == "(" and pattern.startswith("(?", i):
            i += 2
            after_quantifier = False
            continue
        if c in "*+":
            if c == "+" and after_quantifier:  # possessive: a{1,5}+
                after_quantifier = False
                i += 1
                continue
            return f"unbounded quantifier '{c}' at offset {i}; use {{0,N}} / {{1,N}}"
        if c == "?":
            after_quantifier = not after_quantifier  # 'a?' is a quantifier, 'a??' / 'a{2}?' lazy
            i += 1
            continue
        if c == "{":
            m = _REPEAT.match(pattern, i)
            if m is not None and (m.group(1) or m.group(3)):
                low, comma, high = m.groups()
                if comma and not high:
                    return f"unbounded quantifier '{m.group(0)}' at offset {i}; give an upper bound"
                if int(high or low) > MAX_REPEAT:
                    return f"quantifier '{m.group(0)}' at offset {i} exceeds {MAX_REPEAT}"
                i = m.end()
                after_quantifier = True
                continue
        after_quantifier = False
        i += 1
    return None


def _compile(pattern: str) -> Any:
    return _rx.compile(pattern, _rx.ASCII)


def check_rule(rule: Rule) -> None:
    """Raise ``RedactionError`` naming the rule if it is not usable: bad name, unbounded or bad pattern."""
    if not isinstance(rule.name, str) or not _RULE_NAME.fullmatch(rule.name):
        raise RedactionError(f"redaction rule {rule.name!r}: name must be upper-case letters, digits, '_' (max 40)")
    if not isinstance(rule.pattern, str) or not rule.pattern:
        raise RedactionError(f"redaction rule {rule.name!r}: pattern must be a non-empty string")
    problem = _unbounded(rule.pattern)
    if problem is not None:
        raise RedactionError(f"redaction rule {rule.name!r}: {problem}")
    try:
        compiled = _compile(rule.pattern)
    except Exception as exc:  # regex.error / re.error / OverflowError
        raise RedactionError(f"redaction rule {rule.name!r}: pattern does not compile: {exc}") from None
    if compiled.search("") is not None:
        raise RedactionError(f"redaction rule {rule.name!r}: pattern matches the empty string")
    if rule.validator is not None and not callable(rule.validator):
        raise RedactionError(f"redaction rule {rule.name!r}: validator is not callable")
    if not all(isinstance(lit, str) and lit for lit in rule.literals):
        raise RedactionError(f"redaction rule {rule.name!r}: literals must be non-empty strings")


def parse_rules(spec: str) -> list[Rule]:
    """Read user rules from JSON (the ``SIDECAR_REDACT_RULES`` value).

    ``[{"name": "TICKET", "pattern": "TCK-[0-9]{6}", "validator": null, "literals": ["TCK-"]}]``;
    ``validator`` is null or one of the built-in names (see ``VALIDATORS``: ``luhn``, ``card``,
    ``cn_id``, ``cn_uscc``, ``us_ssn``, ``iban``, ``entropy``); ``literals`` is optional.
    Errors raise ``RedactionError`` naming the rule (or its position when it has no name).
    """
    if not spec or not spec.strip():
        return []
    try:
        data = json.loads(spec)
    except ValueError as exc:
        raise RedactionError(f"redaction rules: not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise RedactionError("redaction rules: expected a JSON list of {name, pattern, validator} objects")
    rules: list[Rule] = []
    for index, item in enumerate(data):
        label = f"#{index}"
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            label = repr(item["name"])
        if not isinstance(item, dict):
            raise RedactionError(f"redaction rule {label}: expected an object")
        unknown = set(item) - {"name", "pattern", "validator", "literals"}
        if unknown:
            raise RedactionError(f"redaction rule {label}: unknown field(s) {sorted(unknown)}")
        name, pattern = item.get("name"), item.get("pattern")
        if not isinstance(name, str) or not isinstance(pattern, str):
            raise RedactionError(f"redaction rule {label}: 'name' and 'pattern' must be strings")
        validator_name = item.get("validator")
        validator = None
        if validator_name is not None:
            if not isinstance(validator_name, str) or validator_name not in VALIDATORS:
                raise RedactionError(
                    f"redaction rule {label}: unknown validator {validator_name!r}; one of {sorted(VALIDATORS)} or null"
                )
            validator = VALIDATORS[validator_name]
        literals = item.get("literals", [])
        if not isinstance(literals, list) or not all(isinstance(x, str) for x in literals):
            raise RedactionError(f"redaction rule {label}: 'literals' must be a list of strings")
        rule = Rule(name=name, pattern=pattern, validator=validator, literals=tuple(literals))
        check_rule(rule)
        rules.append(rule)
    return rules


_BUILTIN_CACHE: dict[str, Any] = {}


def _compile_builtin(pattern: str) -> Any:
    compiled = _BUILTIN_CACHE.get(pattern)
    if compiled is None:
        compiled = _BUILTIN_CACHE[pattern] = _compile(pattern)
    return compiled


def _gate(rules: Sequence[_Compiled]) -> Any:
    """One pattern that matches, in the lower-cased text, wherever any rule could start to matter:
    every rule's literals (lower-cased: one plain alternation is ~2.5x faster than one holding
    case-insensitive groups, and a wider gate only lets more texts through to the rules), and a
    digit for the numeric rules. None (no gate) when some rule has no literal at all."""
    parts: set[str] = set()
    for rule in rules:
        if rule.numeric:
            parts.add("[0-9]")
        elif rule.literals:
            parts.update(_stdre.escape(lit.lower()) for lit in rule.literals)
        else:
            return None
    return _stdre.compile("|".join(sorted(parts, key=len, reverse=True)))


def _prepare(rule: Rule, *, user: bool) -> _Compiled:
    compiled = _compile(rule.pattern) if user else _compile_builtin(rule.pattern)
    group = "secret" if "secret" in compiled.groupindex else None
    numeric = not user and rule in NUMERIC_RULES
    caseless = not user and rule in CASELESS_RULES
    min_len = _min_width(rule.pattern)
    unicode = not user and rule in UNICODE_RULES
    return _Compiled(rule.name, compiled, rule.validator, tuple(rule.literals), group, user, numeric, caseless, min_len,
                     unicode)


def _prefilterable(rule: _Compiled) -> bool:
    """Built-in ASCII patterns go to the prefilter; user rules and patterns naming non-ASCII
    characters (escapes the UTF-8 automaton would read differently) always run."""
    pattern = rule.regex.pattern
    return not rule.user and not rule.unicode and pattern.isascii() and not _stdre.search(r"\\[xuUNpP]", pattern)


@functools.lru_cache(maxsize=1024)  # ~50 us a pattern, and each instrument() builds a Redactor
def _min_width(pattern: str) -> int:
    """The fewest characters a match of ``pattern`` spans (0 when the standard parser cannot tell).

    A rule is skipped on a text (or, for numeric rules, on number windows) shorter than that: on
    short texts the per-call cost of a scan is most of the work.  Uses the standard library's
    pattern parser, which is not public API: if it moves, rules are simply never skipped.
    """
    try:
        parser = importlib.import_module("re._parser" if sys.version_info >= (3, 11) else "sre_parse")
        return max(0, int(parser.parse(pattern, _stdre.ASCII).getwidth()[0]))
    except Exception:  # a pattern only the regex module reads (user rules), or a moved parser
        return 0


# ---------------------------------------------------------------------------------------------
# masking by name
# ---------------------------------------------------------------------------------------------


def _norm_name(name: str) -> str:
    """A key name as compared with the secret names: without case, '-', '_', '.' or spaces, and
    (when not ASCII) without invisible characters, compatibility forms folded (``ｐａｓｓｗｏｒｄ``)."""
    if not name.isascii():
        name = unicodedata.normalize("NFKC", compat_fold(name)).casefold()
    return name.lower().replace("-", "").replace("_", "").replace(".", "").replace(" ", "")


_SECRET_NAMES = frozenset({
    "apikey", "xapikey", "apitoken", "password", "passwd", "pwd", "pass", "passphrase", "secret", "clientsecret",
    "accesstoken", "refreshtoken", "idtoken", "authtoken", "sessiontoken", "securitytoken", "bearertoken",
    "authorization", "proxyauthorization", "auth", "credential", "credentials", "privatekey", "secretkey",
    "accesskey", "secretaccesskey", "cookie", "setcookie", "sessionid", "xgoogapikey", "signature", "sig",
    "otp", "totp", "mfacode", "pin", "cvv", "cvc", "subscriptionkey", "ocpapimsubscriptionkey",
})  # fmt: skip
_SECRET_SUFFIXES = (
    "password", "passwd", "secret", "apikey", "accesstoken", "refreshtoken", "authtoken", "sessiontoken",
    "secretkey", "privatekey", "accesskey", "credentials", "apitoken",
)  # fmt: skip
# "token" alone names both secrets and, in OpenAI logprobs, ordinary words: masked by name only
# when the value looks like a credential (see _token_like).
_WEAK_SECRET_NAMES = frozenset({"token"})

_SECRET_PARAMS = frozenset({
    "key", "apikey", "accesstoken", "token", "idtoken", "refreshtoken", "authtoken", "auth", "sig", "signature",
    "xamzsignature", "xgoogsignature", "xamzsecuritytoken", "xamzcredential", "xgoogcredential", "password",
    "passwd", "pwd", "pass", "secret", "clientsecret", "code", "sessionid", "session", "jwt", "assertion",
    "privatetoken", "apitoken", "subscriptionkey",
})  # fmt: skip

_AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})
_COOKIE_HEADERS = frozenset({"cookie", "set-cookie"})
_KEY_HEADERS = frozenset({
    "x-api-key", "api-key", "x-goog-api-key", "anthropic-api-key", "openai-api-key", "ocp-apim-subscription-key",
    "x-functions-key", "x-auth-token", "x-access-token", "x-amz-security-token", "x-csrf-token", "x-xsrf-token",
    "x-vault-token", "private-token", "x-gitlab-token", "x-hub-signature", "x-hub-signature-256",
})  # fmt: skip
_KEY_HEADER_SUFFIXES = ("-token", "-api-key", "-apikey", "-secret", "-password", "-signature", "-credential")
_AUTH_SCHEME = _stdre.compile(r"([A-Za-z][A-Za-z0-9._-]{0,31})([ \t]+)(\S.*)", _stdre.DOTALL)


def _is_secret_key(name: str) -> bool:
    n = _norm_name(name)
    return n in _SECRET_NAMES or n.endswith(_SECRET_SUFFIXES)


def _token_like(value: str) -> bool:
    if len(value) < 16 or any(c.isspace() for c in value):
        return False
    return any(c.isdigit() or c in "._~+/=-" for c in value) or sum(1 for c in value[1:] if c.isupper()) >= 2


_TAG_CACHE = 4096
_SHORT = 128  # strings up to this long have their redacted form remembered
# a string value that is itself a JSON object or array
_EMBEDDED_JSON = _stdre.compile(r"\s{0,64}[\[{][\s\S]*[\]}]\s{0,64}\Z")
_EMBEDDED_MAX = 4 * 1024 * 1024
_JSON_OPEN = ("{", "[")
_OWN_PLACEHOLDER = _stdre.compile(r"<[A-Z][A-Z0-9_]{0,39}:[0-9a-f]{8}>")


def _normalize(type_name: str, value: str) -> str:
    """Canonical form hashed for a placeholder, so one number written two ways gets one tag."""
    if not value.isascii():
        value = compat_fold(value)  # full-width and other compatibility forms hash as ASCII
    if "%" in value and type_name != "SECRET":
        value = unquote(value)
    if type_name in ("CREDIT_CARD", "US_SSN"):
        return "".join(c for c in value if c.isdigit())
    if type_name == "PHONE":
        digits = "".join(c for c in value.split("x")[0].split("ext")[0] if c.isdigit())
        if digits.startswith("00"):
            digits = digits[2:]
        if len(digits) == 13 and digits.startswith("86"):
            digits = digits[2:]
        return digits
    if type_name in ("IBAN", "CN_ID"):
        return value.replace(" ", "").upper()
    if type_name == "EMAIL":
        return value.lower()
    return value


# ---------------------------------------------------------------------------------------------
# the engine
# ---------------------------------------------------------------------------------------------


class _FailClosed:
    """``with _fail_closed:`` lets ``RedactionError`` through and turns any other error into one
    that names only its type, never the input (the caller then stores a marker, not the content).
    A class rather than a generator context manager: it wraps every public call, at about 0.2 us."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> Literal[False]:
        if kind is not None and issubclass(kind, Exception) and not issubclass(kind, RedactionError):
            raise RedactionError(f"redaction failed internally ({kind.__name__})") from None
        return False


_fail_closed = _FailClosed()


def _merge(spans: list[tuple[int, int, int, str]]) -> list[Detection]:
    """Findings from ``(start, end, priority, type)`` detections, overlapping ones made one."""
    if not spans:
        return []
    if len(spans) == 1:
        s, e, _, name = spans[0]
        return [Detection(s, e, name)]
    # Overlapping detections are merged into one span (so no part of either leaks), typed by
    # the earliest rule among them (the rule list is in precedence order), then the longest.
    spans.sort()
    out: list[Detection] = []
    cur_s, cur_e, _, _ = spans[0]
    best = spans[0]
    for span in spans[1:]:
        s, e = span[0], span[1]
        if s < cur_e:
            cur_e = max(cur_e, e)
            if (-span[2], e - s) > (-best[2], best[1] - best[0]):
                best = span
            continue
        out.append(Detection(cur_s, cur_e, best[3]))
        cur_s, cur_e, best = s, e, span
    out.append(Detection(cur_s, cur_e, best[3]))
    return out


class Redactor:
    """Replace secrets and personal data with ``<TYPE:hmac8>`` placeholders.

    ``hmac8`` is the first 8 hex characters of HMAC-SHA256(key, value): the same value under the
    same key gives the same tag in every process; another key gives unrelated tags.  Numbers are
    hashed in a canonical form (digits only for cards, SSNs and phones, lower-case e-mail) so one
    value written two ways correlates.

    Fail-closed contract: every ``redact_*`` method either returns a fully redacted value or
    raises ``RedactionError``; it never returns (part of) its input unredacted because something
    went wrong inside.  The error message never contains the input.  The caller stores a marker
    in place of the content and counts the failure.

    Instances are immutable after construction and safe to share between threads.
    """

    def __init__(
        self,
        key: bytes,
        *,
        extra_rules: Sequence[Rule] = (),
        allow: Iterable[str] = (),
        detect_ip: bool = False,
    ) -> None:
        if not isinstance(key, bytes | bytearray) or not key:
            raise RedactionError("the HMAC key must be non-empty bytes")
        self._mac = hmac.new(bytes(key), digestmod=hashlib.sha256)
        rules = list(BUILTIN_RULES) + (list(IP_RULES) if detect_ip else [])
        compiled = [_prepare(rule, user=False) for rule in rules]
        for rule in extra_rules:
            if not isinstance(rule, Rule):
                raise RedactionError(f"redaction rule {rule!r}: expected a sidecar.redact.Rule")
            check_rule(rule)
            compiled.append(_prepare(rule, user=True))
        self._rules: tuple[_Compiled, ...] = tuple(compiled)
        self._gate = _gate(self._rules)
        # Rules that share their literals are checked together, each keeping its priority (its
        # index in the rule list): one substring test per group instead of one per rule.  The
        # numeric rules scan the number windows of a text (see _windows), the others the text.
        groups: dict[tuple[bool, bool, bool, bool, tuple[str, ...]], list[tuple[int, _Compiled]]] = {}
        for priority, prepared in enumerate(self._rules):
            kind = (prepared.numeric, prepared.user, prepared.caseless, prepared.unicode, prepared.literals)
            groups.setdefault(kind, []).append((priority, prepared))
        self._text_groups = tuple(
            (lits, c, tuple(m)) for (num, _, c, u, lits), m in groups.items() if not num and not u
        )
        # rules that can only match non-ASCII text (internationalised e-mail addresses)
        self._unicode_groups = tuple((lits, c, tuple(m)) for (num, _, c, u, lits), m in groups.items() if u)
        self._number_groups = tuple((lits, tuple(m)) for (num, _, _, _, lits), m in groups.items() if num)
        self._all_text_groups = self._text_groups + self._unicode_groups
        # False only in tests that compare with scanning every numeric rule over the whole text.
        self._windowed = True
        # One Hyperscan pass says which built-in rules can match (see _prefilter); None without the
        # wheel, and set to None by the tests that compare with the pure-regex path.
        filtered = [(i, PREFILTER_SUPERSETS.get(r.regex.pattern) or superset(r.regex.pattern))
                    for i, r in enumerate(self._rules) if _prefilterable(r)]
        self._prefilter: Prefilter | None = build_prefilter(filtered)
        self._prefiltered = frozenset(i for i, _ in filtered)
        self._always_ascii = any(r.user for r in self._rules)  # rules that run on ASCII text whatever the scan says
        self._always_any = self._always_ascii or bool(self._unicode_groups)
        self._group_rules = {id(m): frozenset(p for p, _ in m) for _, _, m in self._all_text_groups}
        # rule -> the index of its text group; the groups holding a rule the prefilter never rules out
        self._group_of = {p: i for i, (_, _, m) in enumerate(self._all_text_groups) for p, _ in m}
        self._always_groups = frozenset(
            i for i, (_, _, m) in enumerate(self._all_text_groups) if any(p not in self._prefiltered for p, _ in m)
        )
        self._numeric_rules = frozenset(p for _, m in self._number_groups for p, _ in m)
        self._tags: dict[tuple[str, str], str] = {}
        self._short: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._names: dict[str, int] = {}  # JSON key -> 2 secret name, 1 'token', 0 other
        self._derived: dict[str, Any] = {}
        self._allow: frozenset[str] = frozenset(v for v in allow if isinstance(v, str) and v)
        self.detect_ip = detect_ip

    # -- placeholders ------------------------------------------------------------------------

    def fingerprint(self, value: str) -> str:
        """The 8-hex keyed pseudonym of ``value`` alone (no normalization)."""
        mac = self._mac.copy()
        mac.update(value.encode("utf-8", "surrogatepass"))
        return mac.hexdigest()[:8]

    def placeholder(self, type_name: str, value: str) -> str:
        """``<TYPE:hmac8>`` for ``value`` (canonicalized by type first, see the class docstring)."""
        # The same values come back call after call (a user's e-mail in every turn, the request
        # echoed in the response): remember recent tags rather than re-hashing them.
        key = (type_name, value)
        tag = self._tags.get(key)
        if tag is None:
            if len(self._tags) >= _TAG_CACHE:
                self._tags.clear()
            tag = self._tags[key] = f"<{type_name}:{self.fingerprint(_normalize(type_name, value))}>"
        return tag

    # -- text --------------------------------------------------------------------------------

    def scan(self, text: str) -> list[Detection]:
        """The spans ``redact_text`` would replace, in order, without replacing them (no values)."""
        if not isinstance(text, str):
            raise RedactionError(f"cannot redact a {type(text).__name__}; expected str")
        with _fail_closed:
            return self._scan(text)

    def redact_text(self, text: str) -> tuple[str, Summary]:
        """Return ``(redacted text, counts by type)``.

        Raises ``RedactionError`` (fail closed) if the text cannot be redacted: a non-str input,
        a user rule that ran past its time budget, or any internal error.  Never returns the
        input unredacted in those cases.
        """
        if not isinstance(text, str):
            raise RedactionError(f"cannot redact a {type(text).__name__}; expected str")
        summary: Summary = {}
        with _fail_closed:
            return self._redact(text, summary), summary

    def redact_bounded(self, text: str, limit: int) -> tuple[str, Summary, bool]:
        """Return ``(redacted text of at most limit characters, counts, cut)``: redact first, cut second.

        The cut falls where it splits no finding (and no token the scan window ended inside), so
        no part of a secret and no part of a placeholder is kept. Counts cover what is kept.
        Raises ``RedactionError`` (fail closed) like ``redact_text``.
        """
        if not isinstance(text, str):
            raise RedactionError(f"cannot redact a {type(text).__name__}; expected str")
        summary: Summary = {}
        with _fail_closed:
            if len(text) <= limit:
                out = self._redact(text, summary)
                if len(out) <= limit:
                    return out, summary, False
                summary.clear()
            window = text[: limit + MARGIN]
            findings = self._scan(window)
            cut = window_end(text, len(window), min(limit, len(window)))
            for f in findings:
                if f.start < cut < f.end:
                    cut = f.start
                    break
            parts: list[str] = []
            masked: list[tuple[int, str]] = []  # (end in the output, type) of each placeholder
            pos = length = 0
            for start, end, type_name in findings:
                if end > cut:
                    break
                tag = self.placeholder(type_name, window[start:end])
                parts += (window[pos:start], tag)
                length += start - pos + len(tag)
                masked.append((length, type_name))
                pos = end
            parts.append(window[pos:cut])
            out = cut_kept("".join(parts), limit)
            for end, type_name in masked:
                if end <= len(out):
                    summary[type_name] = summary.get(type_name, 0) + 1
            return out, summary, True

    def keyed_digest(self, purpose: str, data: bytes, size: int = 16) -> str:
        """Hex HMAC of ``data`` under a key derived for ``purpose`` (retry groups, cache keys):
        a value derived from content that nobody without the key can test guesses against."""
        derived = self._derived.get(purpose)
        if derived is None:
            mac = self._mac.copy()
            mac.update(b"\x00derive\x00" + purpose.encode())
            derived = self._derived[purpose] = hmac.new(mac.digest(), digestmod=hashlib.sha256)
        mac = derived.copy()
        mac.update(data)
        return mac.hexdigest()[:size]

    def _scan(self, text: str) -> list[Detection]:
        spans = self._spans(text)
        if may_have_views(text):
            # Secrets written in forms the rules do not read (full-width digits, percent-encoding,
            # invisible characters inside, HTML character references, a key broken over lines):
            # scan the normalised views too and mask the original characters they came from.
            for view in views(text):
                for s, e, priority, name in self._spans(view.text):
                    start, end = view.to_original(s, e)
                    spans.append((start, end, priority, name))
        return _merge(spans)

    def _spans(self, text: str) -> list[tuple[int, int, int, str]]:
        lowered = ""
        ascii_text = text.isascii()
        hits = None if self._prefilter is None else self._prefilter.candidates(text)
        skip: frozenset[int] = frozenset()
        if hits is not None:
            if not hits and not (self._always_ascii if ascii_text else self._always_any):
                return []  # clean text: one scan, no rule can match
            skip = self._prefiltered.difference(hits)
        # Without the prefilter, most short strings in a model call (roles, ids, finish reasons)
        # contain none of the rules' trigger literals: one search settles them before the per-rule
        # loop. (For long texts the alternation is slower than the loop's substring checks.)
        elif self._gate is not None and len(text) <= 256 and self._gate.search(lowered := text.lower()) is None:
            return []
        spans: list[tuple[int, int, int, str]] = []
        size = len(text)
        groups = self._text_groups if ascii_text else self._all_text_groups
        if hits is not None:  # visit only the groups of the rules the prefilter let through
            limit = len(groups)
            visit = {self._group_of[p] for p in hits if p in self._group_of} | self._always_groups
            groups = tuple(groups[i] for i in sorted(visit) if i < limit)
        for literals, caseless, members in groups:
            if skip and self._group_rules[id(members)] <= skip:
                continue  # the prefilter rules out every rule of the group
            haystack: str | None = text
            if caseless:
                # names in any case: looked up in the lower-cased text (made once a text: with fifteen
                # name rules, lower-casing plus a substring test each costs less than scanning with each)
                haystack = lowered or (lowered := text.lower())
            elif size > 256 and len(literals) > 2 and not members[0][1].user:
                # A substring test reads the whole text at about half the cost of scanning it for
                # a built-in rule (measured: the regex module finds their leading words fast), so
                # on a long text a built-in group with more than two literals is cheaper to scan.
                haystack = None
            if literals and haystack is not None:
                for lit in literals:
                    if lit in haystack:
                        break
                else:
                    continue
            for priority, rule in members:
                if rule.min_len <= size and priority not in skip:  # no match fits in a shorter text
                    self._run(rule, priority, text, text, None, spans)
        if self._number_groups and not (skip and self._numeric_rules <= skip):
            # The windows save scanning the text once per numeric rule; when the prefilter leaves one
            # or two rules to run, scanning the text with those costs less than finding the windows.
            few = bool(skip) and len(self._numeric_rules - skip) <= 2
            view = numeric_view(text) if self._windowed and not few else text
            if view is not None:
                subject, to_text, room = text, None, size
                if isinstance(view, NumericView):
                    subject, to_text, room = view.text, view.to_text, view.longest
                for literals, members in self._number_groups:
                    if literals:
                        for lit in literals:
                            if lit in subject:
                                break
                        else:
                            continue
                    for priority, rule in members:
                        if rule.min_len <= room and priority not in skip:  # no match fits in the longest window
                            self._run(rule, priority, text, subject, to_text, spans)
        return spans

    def _run(
        self,
        rule: _Compiled,
        priority: int,
        text: str,
        subject: str,
        to_text: Callable[[int], int] | None,
        spans: list[tuple[int, int, int, str]],
    ) -> None:
        """Scan ``subject`` (the text, or its number windows mapped back by ``to_text``) for one rule."""
        allow = self._allow
        if rule.user:
            budget = USER_RULE_TIMEOUT_S + len(text) / 1_000_000
            matches: Iterable[Any] = rule.regex.finditer(text, timeout=budget, concurrent=False)
        else:
            # concurrent=False: the regex module otherwise drops and retakes the GIL around every
            # match; on the spool writer's thread each retake waits for the application's thread
            # (up to the 5 ms switch interval), which made a 17 us scan cost ~800 us there.
            first = rule.regex.search(subject, concurrent=False)
            if first is None:  # the usual case, and a search costs less than starting an iterator
                return
            rest = rule.regex.finditer(subject, max(first.end(), first.start() + 1), concurrent=False)
            matches = itertools.chain((first,), rest)
        validator, group = rule.validator, rule.group
        try:
            for m in matches:
                if group is not None:
                    start, end = m.span(group)
                    if start < 0:
                        start, end = m.span()
                else:
                    start, end = m.span()
                if start >= end:
                    continue
                if to_text is not None:
                    shift = to_text(start) - start
                    start, end = start + shift, end + shift
                if allow or validator is not None:
                    value = text[start:end]
                    if value in allow:
                        continue
                    if validator is not None and not validator(value):
                        continue
                spans.append((start, end, priority, rule.name))
        except TimeoutError:
            raise RedactionError(f"redaction rule {rule.name!r} ran past its time budget") from None

    def _redact(self, text: str, summary: Summary) -> str:
        short = len(text) <= _SHORT
        if short:
            # Short strings come back call after call (keys, roles, model names, ids, the user's
            # e-mail): their redacted form is remembered, like the tags are.
            known = self._short.get(text)
            if known is not None:
                for type_name in known[1]:
                    summary[type_name] = summary.get(type_name, 0) + 1
                return known[0]
        findings = self._scan(text)
        if not findings:
            out = text
        else:
            parts: list[str] = []
            pos = 0
            for start, end, type_name in findings:
                parts.append(text[pos:start])
                parts.append(self.placeholder(type_name, text[start:end]))
                pos = end
            parts.append(text[pos:])
            out = "".join(parts)
        types = tuple(f.type for f in findings)
        for type_name in types:
            summary[type_name] = summary.get(type_name, 0) + 1
        if short:
            if len(self._short) >= _TAG_CACHE:
                self._short.clear()
            self._short[text] = (out, types)
        return out

    # -- masking a whole value by name --------------------------------------------------------

    def _mask_value(self, value: str, default_type: str, summary: Summary) -> str:
        """Mask all of ``value``; typed by content when one built-in rule covers it exactly."""
        if not value or value in self._allow:
            return value
        stripped = value.strip()
        if _OWN_PLACEHOLDER.fullmatch(stripped):
            return value  # already one of ours (a value redacted twice keeps its type and tag)
        type_name = default_type
        findings = self._scan(stripped)
        if len(findings) == 1 and findings[0].start == 0 and findings[0].end == len(stripped):
            type_name = findings[0].type
        summary[type_name] = summary.get(type_name, 0) + 1
        return self.placeholder(type_name, stripped)

    # -- JSON --------------------------------------------------------------------------------

    def redact_json(self, value: Any) -> tuple[Any, Summary]:
        """Walk dicts and lists; return a redacted copy and counts by type.

        Values under secret-looking keys (``api_key``, ``password``, ``secret``, ``access_token``,
        ``authorization``, ``cookie``, ... compared without case, ``-`` or ``_``; also names ending
        in ``password``, ``secret``, ``api_key``, ``_token`` kinds) are masked whole as ``SECRET``
        (or the content type when the value is exactly one known key), recursively for nested
        values; ``token`` alone is masked only when its value looks like a credential.  Every
        other string (and dict key) goes through the content rules; integers of 9+ digits too.
        Raises ``RedactionError`` (fail closed) on any failure or an unsupported value type.
        """
        summary: Summary = {}
        with _fail_closed:
            return self._walk(value, summary), summary

    def _walk(self, value: Any, summary: Summary) -> Any:
        if isinstance(value, str):
            if (value[:1] in _JSON_OPEN or value[:1].isspace()) and _EMBEDDED_JSON.match(value):
                return self._embedded(value, summary)
            return self._redact(value, summary)
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for k, v in value.items():
                if isinstance(k, str):
                    new_k = self._redact(k, summary)
                    kind = self._names.get(k)
                    if kind is None:  # the same few dozen key names in every body: judged once
                        if len(self._names) >= _TAG_CACHE:
                            self._names.clear()
                        kind = self._names[k] = 2 if _is_secret_key(k) else int(_norm_name(k) in _WEAK_SECRET_NAMES)
                    if kind == 2:
                        out[new_k] = self._mask_tree(v, summary)
                        continue
                    if kind == 1 and isinstance(v, str) and _token_like(v):
                        out[new_k] = self._mask_value(v, "SECRET", summary)
                        continue
                    out[new_k] = self._walk(v, summary)
                else:
                    out[k] = self._walk(v, summary)
            return out
        if isinstance(value, list | tuple):
            return [self._walk(v, summary) for v in value]
        if value is None or isinstance(value, bool | float):
            return value
        if isinstance(value, int):
            if -100_000_000 < value < 100_000_000:
                return value
            text = str(value)
            redacted = self._redact(text, summary)
            return value if redacted == text else redacted
        raise RedactionError(f"cannot redact a {type(value).__name__} inside JSON")

    def _embedded(self, value: str, summary: Summary) -> str:
        """A string that holds a JSON document (tool-call arguments, tool results): walked by key
        name like the outer document, so ``{"otp": "123456"}`` inside a string is masked too."""
        try:
            inner = json.loads(value) if len(value) <= _EMBEDDED_MAX else None
        except (ValueError, RecursionError):
            inner = None
        if not isinstance(inner, dict | list):
            return self._redact(value, summary)
        found: Summary = {}
        walked = self._walk(inner, found)
        if not found:
            return self._redact(value, summary)  # nothing inside: keep the text as written
        for k, v in found.items():
            summary[k] = summary.get(k, 0) + v
        return json.dumps(walked, ensure_ascii=False)

    def _mask_tree(self, value: Any, summary: Summary) -> Any:
        if isinstance(value, str):
            return self._mask_value(value, "SECRET", summary)
        if isinstance(value, dict):
            return {
                (self._redact(k, summary) if isinstance(k, str) else k): self._mask_tree(v, summary)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._mask_tree(v, summary) for v in value]
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return self._mask_value(str(value), "SECRET", summary)
        raise RedactionError(f"cannot redact a {type(value).__name__} inside JSON")

    # -- headers -----------------------------------------------------------------------------

    def redact_headers(
        self, headers: Iterable[tuple[str, str]] | Mapping[str, str]
    ) -> tuple[dict[str, str], Summary]:
        """Return ``({lower-cased name: redacted value}, counts)``.

        ``authorization`` / ``proxy-authorization`` keep the scheme (``Bearer <OPENAI_KEY:..>``,
        else ``AUTH``); API-key headers (``x-api-key``, ``api-key``, ``x-goog-api-key``, names
        ending in ``-token``, ``-api-key``, ``-secret`` ...) are masked whole (``API_KEY`` or the
        content type); ``cookie`` / ``set-cookie`` keep cookie names and attributes, values become
        ``COOKIE``; all other values go through the content rules.  Repeated names are joined
        with ``", "``.  Raises ``RedactionError`` on failure (fail closed).
        """
        summary: Summary = {}
        with _fail_closed:
            items = headers.items() if isinstance(headers, Mapping) else headers
            out: dict[str, str] = {}
            for raw_name, raw_value in items:
                name = _as_str(raw_name).strip().lower()
                value = self._header_value(name, _as_str(raw_value), summary)
                out[name] = value if name not in out else f"{out[name]}, {value}"
            return out, summary

    def _header_value(self, name: str, value: str, summary: Summary) -> str:
        if name in _AUTH_HEADERS:
            return self._auth_value(value, summary)
        if name in _COOKIE_HEADERS:
            return self._cookie_value(value, summary, set_cookie=name == "set-cookie")
        if name in _KEY_HEADERS or name.endswith(_KEY_HEADER_SUFFIXES) or "api-key" in name or "apikey" in name:
            return self._mask_value(value, "API_KEY", summary)
        return self._redact(value, summary)

    def _auth_value(self, value: str, summary: Summary) -> str:
        m = _AUTH_SCHEME.fullmatch(value.strip())
        if m is None:
            return self._mask_value(value, "AUTH", summary)
        scheme, space, credentials = m.groups()
        return f"{scheme}{space}{self._mask_value(credentials, 'AUTH', summary)}"

    def _cookie_value(self, value: str, summary: Summary, *, set_cookie: bool) -> str:
        parts = value.split(";")
        out: list[str] = []
        for index, part in enumerate(parts):
            if set_cookie and index > 0:  # attributes: Path, Domain, Expires, HttpOnly ...
                out.append(self._redact(part, summary))
                continue
            cname, eq, cvalue = part.partition("=")
            if not eq:
                out.append(self._mask_value(part, "COOKIE", summary) if part.strip() else part)
                continue
            lead = len(cvalue) - len(cvalue.lstrip())
            masked = self._mask_value(cvalue.strip(), "COOKIE", summary) if cvalue.strip() else cvalue.strip()
            out.append(f"{cname}={cvalue[:lead]}{masked}")
        return ";".join(out)

    # -- URLs --------------------------------------------------------------------------------

    def redact_url(self, url: str) -> tuple[str, Summary]:
        """Return ``(redacted URL, counts)``.

        User-info (``user:pass@``) becomes ``<URL_CREDENTIALS:..>@``; secret query (and fragment)
        parameters (``key``, ``api_key``, ``apikey``, ``access_token``, ``token``, ``sig``,
        ``signature``, ``code``, ``password``, ``X-Amz-Signature`` ...) become ``SECRET`` or the
        content type (``?key=<GOOGLE_API_KEY:..>``); then the content rules run on the rest.
        The URL is split by hand (never raises on odd URLs) and otherwise kept byte for byte.
        Raises ``RedactionError`` on failure (fail closed).
        """
        if not isinstance(url, str):
            raise RedactionError(f"cannot redact a {type(url).__name__}; expected str")
        summary: Summary = {}
        with _fail_closed:
            return self._redact(self._url_structure(url, summary), summary), summary

    def _url_structure(self, url: str, summary: Summary) -> str:
        rest, hash_mark, fragment = url.partition("#")
        rest, qmark, query = rest.partition("?")
        scheme_end = rest.find("://")
        if scheme_end >= 0:
            auth_start = scheme_end + 3
            path_start = rest.find("/", auth_start)
            if path_start < 0:
                path_start = len(rest)
            authority = rest[auth_start:path_start]
            userinfo, at, host = authority.rpartition("@")
            if at and userinfo and not _OWN_PLACEHOLDER.fullmatch(userinfo):
                masked = userinfo if userinfo in self._allow else self.placeholder("URL_CREDENTIALS", userinfo)
                if masked != userinfo:
                    summary["URL_CREDENTIALS"] = summary.get("URL_CREDENTIALS", 0) + 1
                rest = f"{rest[:auth_start]}{masked}@{host}{rest[path_start:]}"
        if qmark:
            query = self._mask_params(query, summary)
        if hash_mark and "=" in fragment:
            fragment = self._mask_params(fragment, summary)
        return f"{rest}{qmark}{query}{hash_mark}{fragment}"

    def _mask_params(self, query: str, summary: Summary) -> str:
        out: list[str] = []
        for part in query.split("&"):
            name, eq, value = part.partition("=")
            if eq and value and _norm_name(unquote(name)) in _SECRET_PARAMS:
                out.append(f"{name}={self._mask_value(unquote(value), 'SECRET', summary)}")
            else:
                out.append(part)
        return "&".join(out)


def _as_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    raise TypeError("header names and values must be str or bytes")
