"""Every spelling of a model endpoint that a server would route is matched: percent-encoded separators,
dot segments, repeated or trailing slashes, trailing blanks (clients differ in what they decode)."""

from __future__ import annotations

import itertools

import pytest

from sidecar.providers import EndpointMatcher

PATHS = {
    "/v1/chat/completions": ("openai", "chat"),
    "/v1/messages": ("anthropic", "chat"),
    "/v1beta/models/gemini-1.5-flash:generateContent": ("gcp.gemini", "generate_content"),
}


def spellings(path: str) -> list[str]:
    out = {path, path.replace("/", "%2F").replace("%2F", "/", 1), path + "/", path + "%20", path + "/%2e",
           path.replace("/", "//"), "/x/.." + path, path.replace(":", "%3A"), path.replace("/", "/./")}
    return sorted(out)


@pytest.mark.parametrize(("path", "spelled"), [(p, s) for p in PATHS for s in spellings(p)])
def test_spellings_of_a_model_path_are_matched(path: str, spelled: str) -> None:
    matcher = EndpointMatcher()
    plain = matcher.match("POST", "api.example.com", 443, path)
    other = matcher.match("POST", "api.example.com", 443, spelled)
    assert plain is not None and other is not None, spelled
    assert (other.provider, other.operation, other.api_format) == (plain.provider, plain.operation, plain.api_format)


def test_other_paths_still_pass_through() -> None:
    matcher = EndpointMatcher()
    for path in ("/v1/models", "/health", "/v1/chat", "/v1/files%2Fupload"):
        assert matcher.match("POST", "api.example.com", 443, path) is None, path
    assert len(list(itertools.chain.from_iterable(spellings(p) for p in PATHS))) > 20
