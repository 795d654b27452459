"""Presidio set up pattern-only: no spaCy model, no network; the recognizers it ships for our shared types."""

from __future__ import annotations

from typing import Any

# Presidio entity -> our type, for the types both detect.
SHARED = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_CARD",
    "US_SSN": "US_SSN",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP_ADDRESS",
}


def presidio_engines() -> tuple[Any, Any, str]:
    """(AnalyzerEngine, AnonymizerEngine, version) with Presidio's NoOpNlpEngine (no NLP model)."""
    from importlib.metadata import version

    import tldextract
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers.generic import email_recognizer
    from presidio_anonymizer import AnonymizerEngine

    # The e-mail recognizer checks domains with tldextract, which would download the public suffix
    # list; use the snapshot bundled in the wheel instead (no network here, same answers).
    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    email_recognizer.tldextract = type("_Offline", (), {"extract": staticmethod(offline)})  # type: ignore[attr-defined]

    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    nlp.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(nlp_engine=nlp, languages=["en"])
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])
    return analyzer, AnonymizerEngine(), version("presidio-analyzer")
