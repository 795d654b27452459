"""Tamper evidence: keyed per-record chains over per-field digests, signed digests chained across
producers, anchors, and their verifier. Public submodules: ``erasure`` (erased forms of records),
``holds`` (which records a legal hold keeps), ``ledger`` (signed erasure and hold events)."""

from sidecar.audit._chain import chain_line, chain_of, check, field_digest
from sidecar.audit._digest import DigestBuilder, head_of, sign, signature_problem
from sidecar.audit._keys import IntegrityKey, KeyRing
from sidecar.audit._verify import VerifyFinding, VerifyReport, verify

__all__ = [
           "DigestBuilder",
           "IntegrityKey",
           "KeyRing",
           "VerifyFinding",
           "VerifyReport",
           "chain_line",
           "chain_of",
           "check",
           "field_digest",
           "head_of",
           "sign",
           "signature_problem",
           "verify",
]
