"""TLS settings of the cluster client against a real TLS server on loopback (a self-signed
certificate made with openssl): CA file, fingerprint pinning, the verify toggle, and refusals."""

from __future__ import annotations

import hashlib
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from es_testing import JsonHandler

from sidecar.es import ClientOptions, EsClient, EsUnavailable


class _Ok(JsonHandler):
    def do_GET(self) -> None:
        self.answer_json(b'{"cluster_name":"tls-test"}')


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    """(URL, CA/cert file, SHA-256 fingerprint of the certificate)."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out",
                    str(cert)], check=True, capture_output=True)
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    fingerprint = hashlib.sha256(der).hexdigest()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert, fingerprint
    finally:
        server.shutdown()


def _get(url: str, **options: Any) -> int:
    return EsClient(ClientOptions(urls=(url,), **options)).request("GET", "/").status


def test_ca_file_verifies(tls_server: tuple[str, Path, str]) -> None:
    url, cert, _ = tls_server
    assert _get(url, ca_file=str(cert)) == 200


def test_unknown_certificate_is_refused(tls_server: tuple[str, Path, str]) -> None:
    url, _, _ = tls_server
    with pytest.raises(EsUnavailable, match=r"(?i)certificate|tls|ssl"):
        _get(url)


def test_fingerprint_pins_the_certificate(tls_server: tuple[str, Path, str]) -> None:
    url, _, fingerprint = tls_server
    colons = ":".join(fingerprint[i:i + 2] for i in range(0, 64, 2)).upper()
    assert _get(url, fingerprint=colons) == 200
    wrong = ("0" if fingerprint[0] != "0" else "1") + fingerprint[1:]
    with pytest.raises(EsUnavailable):
        _get(url, fingerprint=wrong)


def test_verify_off_accepts_any_certificate(tls_server: tuple[str, Path, str]) -> None:
    url, _, _ = tls_server
    assert _get(url, verify_tls=False) == 200
