"""One redactor per scan path, for tests that compare the paths: RE2's set as prefilter (the default),
Hyperscan, no prefilter (pure regex), and no prefilter and no number windows (every rule over the whole
text, the reference the others must equal)."""

from __future__ import annotations

from sidecar.redact import Redactor
from sidecar.redact._prefilter import build


def scan_paths(key: bytes, **kwargs: object) -> dict[str, Redactor]:
    re2 = Redactor(key, **kwargs)  # type: ignore[arg-type]
    hyperscan = Redactor(key, **kwargs)  # type: ignore[arg-type]
    hyperscan._scanner.prefilter = build(hyperscan._scanner.filter_patterns, engines=("hyperscan",))
    plain = Redactor(key, **kwargs)  # type: ignore[arg-type]
    plain._scanner.prefilter = None
    whole = Redactor(key, **kwargs)  # type: ignore[arg-type]
    whole._scanner.prefilter = None
    whole._scanner.windowed = False  # every numeric rule over the whole text
    return {"re2": re2, "hyperscan": hyperscan, "plain": plain, "whole": whole}
