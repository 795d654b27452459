"""Tamper evidence: the per-record hash chain, signed segment digests, and their verifier."""

from sidecar.audit._chain import chain_line, chain_of, check
from sidecar.audit._digest import DigestBuilder, sign, signature_ok
from sidecar.audit._verify import Finding, Report, verify

__all__ = ["DigestBuilder", "Finding", "Report", "chain_line", "chain_of", "check", "sign", "signature_ok",
           "verify"]
