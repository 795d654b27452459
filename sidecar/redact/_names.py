"""Masking by name: which JSON keys, headers and URL parameters name a secret."""

from __future__ import annotations

import re
import unicodedata

from ._views import compat_fold

__all__ = [
    "AUTH_HEADERS", "AUTH_SCHEME", "COOKIE_HEADERS", "is_key_header", "is_secret_key", "is_secret_param",
    "is_weak_secret_key", "norm_name", "token_like",
]  # fmt: skip


def norm_name(name: str) -> str:
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

AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})
COOKIE_HEADERS = frozenset({"cookie", "set-cookie"})
_KEY_HEADERS = frozenset({
    "x-api-key", "api-key", "x-goog-api-key", "anthropic-api-key", "openai-api-key", "ocp-apim-subscription-key",
    "x-functions-key", "x-auth-token", "x-access-token", "x-amz-security-token", "x-csrf-token", "x-xsrf-token",
    "x-vault-token", "private-token", "x-gitlab-token", "x-hub-signature", "x-hub-signature-256",
})  # fmt: skip
_KEY_HEADER_SUFFIXES = ("-token", "-api-key", "-apikey", "-secret", "-password", "-signature", "-credential")
AUTH_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9._-]{0,31})([ \t]+)(\S.*)", re.DOTALL)


def is_secret_key(name: str) -> bool:
    n = norm_name(name)
    return n in _SECRET_NAMES or n.endswith(_SECRET_SUFFIXES)


def token_like(value: str) -> bool:
    if len(value) < 16 or any(c.isspace() for c in value):
        return False
    return any(c.isdigit() or c in "._~+/=-" for c in value) or sum(1 for c in value[1:] if c.isupper()) >= 2



def is_weak_secret_key(name: str) -> bool:
    """``token`` and the like: a secret's name only when its value looks like a credential."""
    return norm_name(name) in _WEAK_SECRET_NAMES


def is_secret_param(name: str) -> bool:
    """A URL query or fragment parameter (already percent-decoded) that carries a secret."""
    return norm_name(name) in _SECRET_PARAMS


def is_key_header(name: str) -> bool:
    """An API-key header (lower-cased name): its value is masked whole."""
    return name in _KEY_HEADERS or name.endswith(_KEY_HEADER_SUFFIXES) or "api-key" in name or "apikey" in name
