"""The one-pass prefilter (sidecar/redact/_prefilter.py) changes the cost, never the findings.

Each test scans the same text with the prefilter (both engines: RE2's set, the default, and
Hyperscan, used when RE2 is missing) and with the pure-``regex`` path (the fallback used without
either wheel) and asserts the findings are identical.
"""

from __future__ import annotations

import threading

import pytest
from adversarial_corpus import corpus as adversarial
from hypothesis import given, settings
from hypothesis import strategies as st
from sidecar_testing import bench_corpus

from sidecar.redact import Redactor
from sidecar.redact._prefilter import build, superset
from sidecar.redact._rules import BUILTIN_RULES, IP_RULES, PREFILTER_SUPERSETS, Rule

KEY = b"prefilter-test-key-0123456789abcdef"


def _pair(**kwargs: object) -> tuple[Redactor, Redactor]:
    fast = Redactor(KEY, **kwargs)  # type: ignore[arg-type]
    plain = Redactor(KEY, **kwargs)  # type: ignore[arg-type]
    plain._scanner.prefilter = None  # the pure-regex path: the reference
    return fast, plain


def _on_hyperscan(**kwargs: object) -> Redactor:
    redactor = Redactor(KEY, **kwargs)  # type: ignore[arg-type]
    redactor._scanner.prefilter = build(redactor._scanner.filter_patterns, engines=("hyperscan",))
    return redactor


FAST, PLAIN = _pair()
FAST_IP, PLAIN_IP = _pair(detect_ip=True)
HS, HS_IP = _on_hyperscan(), _on_hyperscan(detect_ip=True)
PAIRS = ((FAST, PLAIN), (FAST_IP, PLAIN_IP), (HS, PLAIN), (HS_IP, PLAIN_IP))


def _assert_same(texts: list[str]) -> int:
    found = 0
    for text in texts:
        for fast, plain in PAIRS:
            expected = plain.scan(text)
            assert fast.scan(text) == expected, text
            found += len(expected)
    return found


def test_the_prefilter_is_in_use() -> None:
    assert FAST._scanner.prefilter is not None and FAST_IP._scanner.prefilter is not None
    assert FAST._scanner.prefilter.engine == "re2"
    assert HS._scanner.prefilter is not None and HS._scanner.prefilter.engine == "hyperscan"
    # every built-in ASCII rule is prefiltered; the internationalised e-mail rule always runs
    assert len(FAST._scanner.prefiltered) == len(BUILTIN_RULES) - 1
    assert len(FAST_IP._scanner.prefiltered) == len(BUILTIN_RULES) + len(IP_RULES) - 1


def test_clean_text_matches_nothing_in_the_prefilter() -> None:
    assert FAST._scanner.prefilter is not None
    assert FAST._scanner.prefilter.candidates("The weather in Paris is mild; see you at noon.") == set()
    assert FAST._scanner.prefilter.candidates("mail bob@example.com") != set()


def test_labelled_corpus_same_findings() -> None:
    pytest.importorskip("faker")
    pytest.importorskip("stdnum")
    corpus = bench_corpus()
    samples = corpus.dirty_samples(1500)
    long_text = corpus.long_clean_text(300_000)
    texts = [s.text for s in samples] + corpus.dirty_json_bodies(samples[:300]) + corpus.clean_samples(500)
    texts += [long_text[i : i + 4000] for i in range(0, len(long_text), 4000)]
    assert _assert_same(texts) > 1500  # the corpus plants at least one value a sample


def test_adversarial_corpus_same_findings() -> None:
    items = adversarial()
    assert _assert_same([item.text for item in items]) >= len(items)


def test_user_rules_always_run() -> None:
    fast = Redactor(KEY, extra_rules=[Rule("TICKET", r"TCK-[0-9]{6}")])
    assert fast._scanner.prefilter is not None
    assert fast.redact_text("ticket TCK-123456 closed")[0].startswith("ticket <TICKET:")


def test_text_that_is_not_utf8_runs_every_rule() -> None:
    text = "bob@example.com \ud800 4111 1111 1111 1111"
    for fast in (FAST, HS):
        assert fast._scanner.prefilter is not None and fast._scanner.prefilter.candidates(text) is None
        assert fast.scan(text) == PLAIN.scan(text) and len(fast.scan(text)) == 2


def test_superset_patterns_cover_their_rules() -> None:
    # a looser pattern stands in for a rule in the prefilter: it must find every match of the rule
    import regex

    for rule in BUILTIN_RULES:
        loose = PREFILTER_SUPERSETS.get(rule.pattern)
        if loose is None:
            continue
        exact = regex.compile(rule.pattern, regex.ASCII)
        for text in ("a.b+c@mail.example.co.uk", "x@y.z", "A@b-c.xn--p1ai", "1@2.3", "名a@b.cn。"):
            if exact.search(text):
                assert regex.search(loose, text, regex.ASCII), (rule.name, text)


def test_threads_share_one_redactor() -> None:
    texts = [f"call 415-555-{2600 + i:04d} or mail u{i}@example.com, card 4111 1111 1111 1111" for i in range(200)]
    expected = [PLAIN.scan(t) for t in texts]
    errors: list[str] = []

    def work(fast: Redactor) -> None:
        for t, e in zip(texts, expected, strict=True):
            if fast.scan(t) != e:
                errors.append(t)

    threads = [threading.Thread(target=work, args=(fast,)) for _ in range(4) for fast in (FAST, HS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_build_without_patterns_or_with_a_bad_one() -> None:
    assert build([]) is None
    assert build([(0, "a(")]) is None  # does not compile: nothing prefiltered, every rule runs
    assert build([(0, "abc")], engines=()) is None  # no engine (neither wheel installed)
    assert build([(0, "abc")], engines=("no-such-engine",)) is None


def test_patterns_rewritten_for_re2_match_wherever_they_did() -> None:
    from sidecar.redact._prefilter import for_re2

    assert for_re2(r"(?<![a-z])ab(?=c(d)[)])e(?!f)") == r"(?:)ab(?:)e(?:)"
    assert for_re2(r"a\sb[\s,]\Z") == r"a[\t\n\x0b\f\r ]b[\t\n\x0b\f\r ,]\z"
    assert for_re2(r"[(?=]x\(?!y") == r"[(?=]x\(?!y"  # inside a class or escaped: not a look-around


_PIECES = st.sampled_from([
    "4111 1111 1111 1111", "415-555-2671", "(415) 555-2671", "+8613812345678", "138 1234 5678", "123-45-6789",
    "110105194912310021", "91350100M000100Y43", "GB82 WEST 1234 5698 7654 32", "sk-proj-", "sk-ant-", "AKIA",
    "ghp_", "hf_", "xoxb-", "eyJhbGciOiJIUzI1NiJ9", "Bearer ", "Basic ", "password=", '"api_key": "', "otp:",
    "://u:p@", "@", "bob@example.com", "%40", "%2540", "１３８", "＠", "邮箱", "。", "\u00a0", "192.168.0.1", "::1",
    "0", "1", "9", " ", "-", ".", "+", "(", ")", "x", "ext.", "A", "Z", "_", "=", "\n", "\\\"",
])  # fmt: skip
_NOISE = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_PIECES, _NOISE, st.text(alphabet="0123456789 -.()+xABCDEF@", max_size=24)), max_size=24))
def test_generated_text_same_findings(parts: list[str]) -> None:
    _assert_same(["".join(parts)])


_RULES = [r for r in (*BUILTIN_RULES, *IP_RULES) if r.pattern.isascii()]
_EDGE = st.text(alphabet="0123456789 -.,+()#xeAZaz_@:=/\n\u00e9中", max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_PIECES, _EDGE), max_size=10))
def test_rewritten_look_arounds_match_wherever_the_rule_does(parts: list[str]) -> None:
    import regex

    text = "".join(parts)
    for rule in _RULES:
        loose = PREFILTER_SUPERSETS.get(rule.pattern) or superset(rule.pattern)
        if regex.search(rule.pattern, text, regex.ASCII) is not None:
            assert regex.search(loose, text, regex.ASCII) is not None, (rule.name, text)


def test_look_around_rewrites() -> None:
    assert superset(r"(?<![0-9A-Za-z+])\+[1-9][0-9]{7,14}(?![0-9A-Za-z])") == (
        r"(?:^|[^0-9A-Za-z+])\+[1-9][0-9]{7,14}(?:[^0-9A-Za-z]|$)"
    )
    # a late look-behind is moved only when the start before it has exactly its width
    assert superset(r"[0-9]{3}(?<![a-z][\s\S]{3})x") == r"(?:^|[^a-z])[0-9]{3}x"
    assert superset(r"[0-9]{2,3}(?<![a-z][\s\S]{3})x") == r"[0-9]{2,3}(?<![a-z][\s\S]{3})x"
    assert superset(r"ab(?=c)d") == r"ab(?=c)d"  # other look-arounds are left to the prefilter


def test_short_strings_count_every_time() -> None:
    r = Redactor(KEY)
    for _ in range(3):
        out, summary = r.redact_json({"to": "bob@example.com", "role": "user"})
        assert summary == {"EMAIL": 1} and out["to"].startswith("<EMAIL:") and out["role"] == "user"


def test_one_database_a_process_for_each_rule_set() -> None:
    # compiling takes about half a second: every Redactor with the same rules shares one database
    again = Redactor(b"another-key-0123456789abcdef0123")
    assert again._scanner.prefilter is FAST._scanner.prefilter
    assert FAST_IP._scanner.prefilter is not FAST._scanner.prefilter


def test_large_repeats_open_up() -> None:
    assert superset(r"eyJ[A-Za-z0-9_-]{5,4096}\.[a-z]{1,64}") == r"eyJ[A-Za-z0-9_-]{5,}\.[a-z]{1,64}"


def test_every_other_look_behind_is_dropped_once_one_is_rewritten() -> None:
    # the card and SSN rules carry a second look-behind; the JWT rule opens with two
    card = r"[2-6](?<![0-9A-Za-z][2-6])(?<![0-9][.,][2-6])(?:[ -]?[0-9]){12,18}(?![0-9A-Za-z])"
    assert superset(card) == r"(?:^|[^0-9A-Za-z])[2-6](?:[ -]?[0-9]){12,18}(?:[^0-9A-Za-z]|$)"
    assert superset(r"(?<![a-z])(?<![a-z_-][_-])eyJ") == r"(?:^|[^a-z])eyJ"
    assert superset(r"(?<![a-z])a(?<=a)b") == r"(?:^|[^a-z])a(?<=a)b"  # a positive one is left in place
    for index in FAST_IP._scanner.prefiltered:  # no built-in pattern the prefilter reads keeps a look-behind
        pattern = FAST_IP._scanner.rules[index].regex.pattern
        loose = PREFILTER_SUPERSETS.get(pattern) or superset(pattern)
        assert "(?<" not in loose, FAST_IP._scanner.rules[index].name


def test_needs_utf8_only_where_a_character_could_count_as_several_bytes() -> None:
    from sidecar.redact._prefilter import needs_utf8

    for pattern in ("a.b", "[^x]{3}", r"a\S", r"\W", r"\D{2}", "é", r"x[^\s&]{0,9}=", "a("):
        assert needs_utf8(pattern), pattern
    for pattern in ("abc", r"(?:^|[^0-9A-Za-z])[0-9]{3}(?:[^0-9A-Za-z]|$)", r"(?i:bearer)[ ]{1,4}\s"):
        assert not needs_utf8(pattern), pattern


_MULTIBYTE = st.text(alphabet="é中𝟏\u00a0\u200b。１ａ", min_size=1, max_size=3)  # 2, 3 and 4 bytes in UTF-8


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_PIECES, _MULTIBYTE, _EDGE), max_size=12))
def test_each_rule_the_exact_pattern_matches_is_reported(parts: list[str]) -> None:
    # Rule by rule (findings could hide a miss behind another rule's overlapping match): the
    # prefilter, whether its pattern runs in byte or UTF-8 mode, reports every rule that matches.
    text = "".join(parts)
    for fast in (FAST, FAST_IP, HS, HS_IP):
        assert fast._scanner.prefilter is not None
        hits = fast._scanner.prefilter.candidates(text)
        assert hits is not None
        for index in fast._scanner.prefiltered:
            rule = fast._scanner.rules[index]
            if rule.regex.search(text) is not None:
                assert index in hits, (rule.name, text)


_HIDDEN = st.sampled_from([
    "%40", "%2540", "%EF%BC%94", "&#64;", "&#x40;", "&commat;", "\\u0040", "\\x40", "１３８", "＠", "\u200b", "\u00ad",
    "\u00a0", "\u3000", "①", "𝟏", "sk-proj-Ab3", "\n", "\r\n", "AKI", "A", "eyJ", "hf_", "xox", "ghp_", "-", "_",
])  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_HIDDEN, _PIECES, _MULTIBYTE, st.text(alphabet="ab01_-.\n", max_size=8)), max_size=14))
def test_a_text_with_a_view_always_trips_a_view_trigger(parts: list[str]) -> None:
    # The normalised views are made only when the one scan reports a view trigger: a text that
    # has a view must trip one, or its hidden forms would go unread.
    from sidecar.redact._views import views

    text = "".join(parts)
    if next(views(text), None) is not None:
        for fast in (FAST, HS):
            assert fast._scanner.prefilter is not None
            hits = fast._scanner.prefilter.candidates(text)
            assert hits is not None and not fast._scanner.triggers.isdisjoint(hits), text


@pytest.mark.parametrize("fast", [FAST, HS], ids=["re2", "hyperscan"])
def test_views_are_skipped_on_text_that_trips_no_trigger(fast: Redactor) -> None:
    assert fast._scanner.prefilter is not None
    for quiet in ("这是一段中文，没有秘密。", "line one.\nline two", "50% off", "a & b", "C:\\path"):
        assert fast._scanner.triggers.isdisjoint(fast._scanner.prefilter.candidates(quiet) or {0}), quiet
    for loud in ("bob%40example.org", "alice&#64;example.org", "１３８１２３４５６７８", "a\u200bb", "sk-proj-\nAb"):
        assert not fast._scanner.triggers.isdisjoint(fast._scanner.prefilter.candidates(loud) or set()), loud


def test_re2_no_answer_runs_every_rule() -> None:
    # RE2's set answers an empty list both for "no pattern matched" and when its DFA ran out of
    # memory (the binding drops the error). The sentinel pattern, which matches every text, tells
    # them apart: an answer without it must read as "could not scan" (every rule runs), never as
    # "clean" (every rule skipped). The stand-in answers what the binding answers on that failure.
    from sidecar.redact._prefilter import _compile_re2, _Re2Set

    class _OutOfMemory:
        def Match(self, text: str) -> list[int]:  # the binding's name
            return []

    built = _compile_re2(FAST._scanner.filter_patterns)
    assert isinstance(built, _Re2Set)
    assert built.candidates("nothing to see") == set()  # the sentinel matched: a real "clean"
    failing = _Re2Set(_OutOfMemory, list(range(len(FAST._scanner.filter_patterns))))
    redactor = Redactor(KEY)
    redactor._scanner.prefilter = failing
    text = "mail bob@example.com, card 4111 1111 1111 1111, key sk-proj-" + "Ab3dE" * 8
    assert failing.candidates(text) is None
    assert redactor.scan(text) == PLAIN.scan(text) and len(PLAIN.scan(text)) == 3


def test_a_forked_child_scans_with_its_own_re2_set() -> None:
    # RE2 locks its DFA cache while it scans (without the GIL): a child forked meanwhile would
    # inherit that lock held. So a child builds its own set on its first scan.
    import os
    import select

    prefilter = FAST._scanner.prefilter
    assert prefilter is not None and prefilter.engine == "re2"
    parents = prefilter._set  # type: ignore[attr-defined]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: scan, report, leave at once
        try:
            hits = prefilter.candidates("mail bob@example.com")
            renewed = prefilter._set is not parents  # type: ignore[attr-defined]
            os.write(write, b"1" if hits and renewed else b"0")
        finally:
            os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], 60)
    answer = os.read(read, 1) if ready else b""
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"1"
    assert prefilter._set is parents  # type: ignore[attr-defined]
    assert prefilter.candidates("mail bob@example.com")
