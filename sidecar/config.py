"""Settings: ``SIDECAR_*`` environment variables, the same names as ``instrument()`` options.

Two readers, two classes on one base: :class:`AppSettings` is what the instrumented application reads
(``instrument()``), :class:`ShipperSettings` what the ``sidecar`` command reads (``sidecar run`` and the
other commands). Both share the spool, the key and the service name. Each is read once at the edge and
passed down as a frozen object; a bad value raises :class:`ConfigError` naming the variable, at start-up.
"""

from __future__ import annotations

import ipaddress
import os
import pathlib
import re
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from pydantic import (
    BeforeValidator,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from sidecar.errors import ConfigError as ConfigError  # raised here: importable from here too
from sidecar.providers import HostRule

MIN_RETENTION_DAYS = 90
MAX_RETENTION_DAYS = 36_500  # a century: beyond this, dates and index ages overflow
_GIB = 1024 * 1024 * 1024
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")
_HOST_NAME = re.compile(r"[A-Za-z0-9_.-]{1,253}")


def check_host(host: str) -> str:
    """A host name, an IPv4 address, or an IPv6 address (with or without brackets) -> the host without
    brackets; ValueError naming what is wrong."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in bare or bare != host:
        try:
            return str(ipaddress.IPv6Address(bare))
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    if not _HOST_NAME.fullmatch(bare):
        raise ValueError(f"{host!r} is not a host name or IP address")
    return bare


class ListenAddress(NamedTuple):
    """Where a listener binds; ``str()`` gives ``host:port`` back (``[::1]:9464`` for IPv6)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(value: str) -> ListenAddress:
    """``host:port`` (``[::1]:9464`` for IPv6) -> ListenAddress; ValueError naming what is wrong."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"{value!r}: expected host:port, e.g. 0.0.0.0:9464, 127.0.0.1:9464 or [::1]:9464")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ValueError(f"{value!r}: an IPv6 address goes in brackets, e.g. [::1]:9464")
    if not port.isascii() or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r}: the port must be a number from 0 to 65535")
    return ListenAddress(check_host(host), int(port))


def _listen(value: Any) -> Any:
    return parse_listen(value) if isinstance(value, str) else value


def split_commas(value: Any) -> Any:
    """A comma list from the environment or an ``instrument()`` option -> its non-blank items, stripped;
    a list or tuple given in code is taken item by item."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return tuple(value) if isinstance(value, list) else value


def _host_rules(with_provider: bool) -> Any:
    def parse(value: Any) -> Any:
        from sidecar.providers import parse_host_rules

        items = split_commas(value)
        if isinstance(items, tuple) and all(isinstance(item, str) for item in items):
            return parse_host_rules(",".join(items), with_provider=with_provider)
        return items

    return parse


def _node_urls(value: Any) -> Any:
    """One node URL or several; each checked as a node address, none twice."""
    from sidecar.es import node_config, redact_url

    urls = tuple(url.rstrip("/") for url in split_commas(value or ()))
    for url in urls:
        if node_config(url).port == 0:  # node_config raises ValueError saying what else is wrong
            raise ValueError(f"{redact_url(url)!r}: port 0 is not a port a node listens on")
    if len(set(urls)) != len(urls):
        raise ValueError("a node URL is listed twice")
    return urls


# Comma lists: NoDecode keeps pydantic-settings from reading the variable as JSON; the validator splits it.
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(split_commas)]
ModelHosts = Annotated[tuple[HostRule, ...], NoDecode, BeforeValidator(_host_rules(with_provider=True))]
ExcludedHosts = Annotated[tuple[HostRule, ...], NoDecode, BeforeValidator(_host_rules(with_provider=False))]
NodeUrls = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_node_urls)]
Listen = Annotated[ListenAddress, NoDecode, BeforeValidator(_listen)]


def _default_spool_dir() -> pathlib.Path:
    """A per-user state directory (never a shared one such as /tmp): ``$XDG_STATE_HOME``, else
    ``~/.local/state``. Containers set ``SIDECAR_SPOOL_DIR`` to their volume explicitly."""
    base = os.environ.get("XDG_STATE_HOME", "")
    root = pathlib.Path(base) if base and os.path.isabs(base) else pathlib.Path.home() / ".local" / "state"
    return root / "llm-audit-sidecar" / "spool"


class SharedSettings(BaseSettings):
    """What the app and the sidecar both read: the spool between them, the key, the service name."""

    model_config = SettingsConfigDict(env_prefix="SIDECAR_", frozen=True, extra="forbid")

    service_name: str = Field(
        default_factory=lambda: os.environ.get("OTEL_SERVICE_NAME", "unknown_service"),
        description="Service name stamped on every record (falls back to OTEL_SERVICE_NAME).",
    )
    spool_dir: pathlib.Path = Field(default_factory=_default_spool_dir,
                                    description="Where the app writes records and the sidecar reads them.")
    spool_group: str | None = Field(
        default=None, description="Group shared by the app and the sidecar when they run as different users: "
        "the spool becomes 2770 and its files 0640 (else 0700 and 0600).")
    hmac_key: SecretStr | None = Field(default=None, description="Key for pseudonyms and fingerprints; "
                                       "generated and stored under spool_dir when unset.")
    hmac_key_file: pathlib.Path | None = Field(default=None, description="Where a generated key is kept.")
    max_model_labels: int = Field(default=50, ge=1, le=10_000,
                                  description="Distinct model names kept as metric labels.")

    @field_validator("spool_group")
    @classmethod
    def _known_group(cls, v: str | None) -> str | None:
        if v:
            import grp

            if v.isdigit() and int(v) > 0xFFFFFFFE:
                raise ValueError(f"group id {v} is out of range")
            if not v.isdigit():
                try:
                    grp.getgrnam(v)
                except KeyError:
                    raise ValueError(f"unknown group {v!r}") from None
        return v or None

    @field_validator("hmac_key")
    @classmethod
    def _unset_when_empty(cls, v: SecretStr | None) -> SecretStr | None:
        return v if v is not None and v.get_secret_value() else None

    @property
    def key_file(self) -> pathlib.Path:
        return self.hmac_key_file or (self.spool_dir / ".hmac-key")

    def hmac_key_text(self) -> str | None:
        """``SIDECAR_HMAC_KEY`` in clear, for the key loader only (None when unset)."""
        return self.hmac_key.get_secret_value() if self.hmac_key is not None else None


class AppSettings(SharedSettings):
    """What the instrumented application reads (``instrument()`` options override the environment)."""

    spool_fsync: Literal["always", "interval", "never"] = Field(
        default="interval", description="always: a call returns only after its record is on disk; "
        "interval: fsync every spool_fsync_interval seconds; never: leave it to the OS.")
    spool_fsync_interval: float = Field(default=0.5, gt=0, le=3600, allow_inf_nan=False,
                                        description="Seconds between fsyncs in interval mode.")
    spool_segment_bytes: int = Field(default=16 * 1024 * 1024, ge=4096, le=_GIB,
                                     description="Rotate a segment at this size.")
    spool_segment_seconds: float = Field(default=30.0, gt=0, le=86400, allow_inf_nan=False,
                                         description="Rotate a non-empty segment at this age.")
    spool_queue_size: int = Field(default=10_000, ge=1, le=10_000_000,
                                  description="Records waiting for the writer before drops.")
    spool_max_bytes: int = Field(default=_GIB, ge=0, le=1024 * _GIB,
                                 description="Stop writing (count drops) at this spool size; 0 = no cap.")
    capture_content: bool = Field(default=True, description="Store redacted request/response content.")
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=0, le=_GIB,
                                description="Bytes of each body kept for parsing and content (the seed's 10 MB cap).")
    max_content_chars: int = Field(default=16 * 1024, ge=0, le=_GIB,
                                   description="Characters of content kept (and redacted) per body in a record.")
    model_hosts: ModelHosts = Field(default=(), description="Extra model hosts: comma list of host[:port][=provider].")
    exclude_hosts: ExcludedHosts = Field(default=(), description="Hosts never recorded: comma list of host[:port].")
    user_header: str | None = Field(default=None, description="Request header that carries the caller's user id.")
    conversation_header: str | None = Field(
        default=None, description="Request header that carries the conversation (session, thread) id.")
    prices_file: pathlib.Path | None = Field(
        default=None, description="JSON file of prices (USD per million tokens) that override the price "
        "database: negotiated prices, self-hosted models (docs/genai-conventions.md).")
    redact_rules: str | None = Field(default=None, description="Extra redaction rules as a JSON list.")
    redact_allow: CommaList = Field(default=(), description="Comma list of values never masked.")
    redact_ip: bool = Field(default=False, description="Also mask IP addresses.")
    metrics_port: int | None = Field(default=None, ge=0, le=65535,
                                     description="Serve the app's Prometheus metrics on this port.")
    metrics_host: str = Field(default="127.0.0.1", description="Interface the app's metrics port binds "
                              "(loopback by default; 0.0.0.0 for every interface).")
    # Sidecar process

    @field_validator("metrics_host")
    @classmethod
    def _metrics_host(cls, v: str) -> str:
        check_host(v)
        return v

    @field_validator("redact_rules")
    @classmethod
    def _redact_rules(cls, v: str | None) -> str | None:
        if v:
            from sidecar.redact import RedactionError, parse_rules

            try:
                parse_rules(v)
            except RedactionError as exc:
                raise ValueError(str(exc)) from None
        return v

    @field_validator("user_header", "conversation_header")
    @classmethod
    def _header_name(cls, v: str | None) -> str | None:
        if not v:
            return None  # empty = unset
        if not _HEADER_NAME.fullmatch(v):
            raise ValueError("not an HTTP header name")
        return v.lower()


class ShipperSettings(SharedSettings):
    """What the ``sidecar`` command reads: where to ship, retention, the listener, the audit checks."""

    elasticsearch_url: NodeUrls = Field(
        default=(), description="Ship to Elasticsearch or OpenSearch: one node URL or several, comma-separated "
        "(requests fail over between them); unset = embedded store.")
    elasticsearch_cloud_id: SecretStr | None = Field(
        default=None, description="Elastic Cloud deployment id (instead of SIDECAR_ELASTICSEARCH_URL).")
    elasticsearch_api_key: SecretStr | None = Field(
        default=None, description="API key: the encoded key, or id:key.")
    elasticsearch_username: str | None = Field(default=None, description="Basic auth user (instead of an API key).")
    elasticsearch_password: SecretStr | None = Field(default=None, description="Basic auth password.")
    elasticsearch_ca_file: FilePath | None = Field(default=None, description="CA bundle to verify the nodes' TLS "
                                                   "certificates with (default: the system's).")
    elasticsearch_tls_fingerprint: str | None = Field(
        default=None, description="SHA-256 fingerprint of a certificate in the node's chain (hex, colons allowed); "
        "pins it instead of verifying the chain.")
    elasticsearch_verify_tls: bool = Field(default=True, description="Verify the nodes' TLS certificates "
                                           "(false: encrypted but unauthenticated; for tests only).")
    elasticsearch_gzip: bool = Field(default=False, description="Gzip request bodies (less network, more CPU).")
    elasticsearch_timeout: float = Field(default=30.0, gt=0, le=3600,
                                         description="Seconds to wait for a node's answer.")
    elasticsearch_connect_timeout: float = Field(default=10.0, gt=0, le=600,
                                                 description="Seconds to wait for a connection to a node.")
    elasticsearch_replicas: str = Field(
        default="0-1", pattern=r"^(\d{1,3}|\d{1,3}-(\d{1,3}|all))$",
        description="Replicas of each audit index: a number, or a range that follows the cluster's size "
        "(index.auto_expand_replicas; 0-1 = one copy more as soon as there is a second node).")
    elasticsearch_shards: int = Field(default=1, ge=1, le=1024, description="Primary shards of each daily index.")
    store_path: pathlib.Path | None = Field(default=None,
                                            description="Embedded store file (default: audit.db in state_dir).")
    state_dir: pathlib.Path | None = Field(default=None,
                                           description="Checkpoints, dead letters (default: spool_dir/.sidecar).")
    index_prefix: str = Field(default="llm-audit", pattern=r"^[a-z0-9][a-z0-9_.-]{0,100}$",
                              description="Prefix of the daily indices.")
    retention_days: int = Field(default=MIN_RETENTION_DAYS, ge=1, le=MAX_RETENTION_DAYS,
                                description="Days records are kept (at least 90).")
    allow_short_retention: bool = Field(default=False,
                                        description="Explicit override to keep records fewer than 90 days.")
    batch_size: int = Field(default=2000, ge=1, le=100_000, description="Records per batch to the sink.")
    poll_seconds: float = Field(default=1.0, gt=0, le=3600, allow_inf_nan=False,
                                description="How often `sidecar run` looks for new records.")
    listen: Listen = Field(default=ListenAddress("127.0.0.1", 9464),
                           description="Where `sidecar run` serves /metrics and /healthz (host:port, [::1]:port "
                           "for IPv6; the container image sets 0.0.0.0:9464).")
    http_max_connections: int = Field(default=64, ge=1, le=10_000,
                                      description="Open connections the /metrics and /healthz listener serves at once.")
    audit_keyring: pathlib.Path | None = Field(
        default=None, description="File of older HMAC secrets (one per line) `sidecar audit verify` also accepts.")
    digest_grace_seconds: float = Field(
        default=900.0, gt=0, le=30 * 86400, allow_inf_nan=False,
        description="`sidecar audit verify` requires a digest for every record older than this.")



    @field_validator("elasticsearch_cloud_id")
    @classmethod
    def _cloud_id(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            from sidecar.es import cloud_node_config

            cloud_node_config(v.get_secret_value())
        return v

    @field_validator("elasticsearch_tls_fingerprint")
    @classmethod
    def _fingerprint(cls, v: str | None) -> str | None:
        if v is None:
            return None
        hexits = v.replace(":", "").strip().lower()
        if len(hexits) != 64 or any(c not in "0123456789abcdef" for c in hexits):
            raise ValueError("a SHA-256 fingerprint is 64 hex digits (colons allowed)")
        return hexits

    @model_validator(mode="before")
    @classmethod
    def _cloud_id_url(cls, data: Any) -> Any:
        """With a Cloud id, ``elasticsearch_url`` holds its address, so every "is a cluster configured"
        check sees it; both given is refused (which one would win is not obvious)."""
        if isinstance(data, dict) and data.get("elasticsearch_cloud_id"):
            if data.get("elasticsearch_url"):
                raise ValueError("SIDECAR_ELASTICSEARCH_CLOUD_ID and SIDECAR_ELASTICSEARCH_URL: set one, not both")
            from sidecar.es import cloud_node_config

            raw = data["elasticsearch_cloud_id"]
            try:
                node = cloud_node_config(raw.get_secret_value() if isinstance(raw, SecretStr) else str(raw))
            except ValueError:
                return data  # the field validator names the variable
            data = {**data, "elasticsearch_url": f"https://{node.host}:{node.port}"}
        return data

    @model_validator(mode="after")
    def _es_auth(self) -> ShipperSettings:
        if self.elasticsearch_api_key is not None and self.elasticsearch_username is not None:
            raise ValueError("SIDECAR_ELASTICSEARCH_API_KEY and SIDECAR_ELASTICSEARCH_USERNAME: set one, not both")
        if self.elasticsearch_password is not None and self.elasticsearch_username is None:
            raise ValueError("SIDECAR_ELASTICSEARCH_PASSWORD is set without SIDECAR_ELASTICSEARCH_USERNAME")
        return self

    @model_validator(mode="after")
    def _retention_floor(self) -> ShipperSettings:
        if self.retention_days < MIN_RETENTION_DAYS and not self.allow_short_retention:
            raise ValueError(
                f"SIDECAR_RETENTION_DAYS={self.retention_days} is below {MIN_RETENTION_DAYS}; "
                "set SIDECAR_ALLOW_SHORT_RETENTION=true to override"
            )
        return self

    @property
    def sidecar_state_dir(self) -> pathlib.Path:
        return self.state_dir or (self.spool_dir / ".sidecar")

    @property
    def embedded_store_path(self) -> pathlib.Path:
        return self.store_path or (self.sidecar_state_dir / "audit.db")


AnySettings = TypeVar("AnySettings", bound=SharedSettings)


def load_settings(kind: type[AnySettings], **overrides: Any) -> AnySettings:
    """``kind`` (AppSettings or ShipperSettings) from the environment, ``overrides`` (``instrument()``
    options) on top; ConfigError naming every bad variable."""
    try:
        return kind(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else ""  # the field, not the item of a list
            problems.append(f"SIDECAR_{name.upper()}: {_message(err)}" if name else _message(err))
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
    except SettingsError as exc:  # a value pydantic-settings could not even decode
        raise ConfigError(f"invalid configuration: {exc}") from None


def _message(err: Any) -> str:
    """Pydantic's message without its "Value error, " prefix; the wanted type for a wrong type."""
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _shown(default: Any) -> str:
    if isinstance(default, tuple) and not isinstance(default, ListenAddress):
        return ",".join(map(str, default))
    return str(default)


def describe_settings(kind: type[SharedSettings]) -> str:
    """One line per variable of ``kind``, for ``--help`` and the docs."""
    lines = []
    for name, info in kind.model_fields.items():
        default = _shown(info.default) if info.default_factory is None else "(computed)"
        lines.append(f"  SIDECAR_{name.upper():<30} {info.description} [default: {default}]")
    return "\n".join(lines)
