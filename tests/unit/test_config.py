"""The two settings classes: typed comma lists, the listen address, secrets, and which class reads what."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.config import (
    AppSettings,
    ConfigError,
    ListenAddress,
    SharedSettings,
    ShipperSettings,
    load_settings,
    parse_listen,
)
from sidecar.providers import HostRule


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in [k for k in os.environ if k.startswith("SIDECAR_")]:
        monkeypatch.delenv(name)
    yield


def test_comma_lists_from_the_environment_are_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDECAR_MODEL_HOSTS", " llm.internal:8000=vllm, ,gw.corp ")
    monkeypatch.setenv("SIDECAR_EXCLUDE_HOSTS", "api.example.com")
    monkeypatch.setenv("SIDECAR_REDACT_ALLOW", " alice@example.com ,,+1 555 0100 ")
    s = load_settings(AppSettings)
    assert s.model_hosts == (HostRule("llm.internal", 8000, "vllm"), HostRule("gw.corp", None, None))
    assert s.exclude_hosts == (HostRule("api.example.com", None, None),)
    assert s.redact_allow == ("alice@example.com", "+1 555 0100")


def test_a_json_looking_value_is_a_comma_list_not_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDECAR_REDACT_ALLOW", '["a", "b"]')
    assert load_settings(AppSettings).redact_allow == ('["a"', '"b"]')


def test_instrument_options_take_a_string_or_a_list() -> None:
    assert load_settings(AppSettings, redact_allow=["x", "y"]).redact_allow == ("x", "y")
    assert load_settings(AppSettings, model_hosts="h=vllm").model_hosts == (HostRule("h", None, "vllm"),)


@pytest.mark.parametrize(("variable", "value"), [
    ("SIDECAR_MODEL_HOSTS", "ok.host, bad host"), ("SIDECAR_EXCLUDE_HOSTS", "a,host=provider"),
    ("SIDECAR_ELASTICSEARCH_URL", "http://a:9200,ftp://b"), ("SIDECAR_ELASTICSEARCH_URL", "http://a:9200,http://a:9200"),
    ("SIDECAR_ELASTICSEARCH_URL", "http://user:pw@a:0"),
])
def test_a_bad_item_names_the_variable_once_on_one_line(monkeypatch: pytest.MonkeyPatch, variable: str,
                                                         value: str) -> None:
    monkeypatch.setenv(variable, value)
    kind = AppSettings if variable != "SIDECAR_ELASTICSEARCH_URL" else ShipperSettings
    with pytest.raises(ConfigError) as caught:
        load_settings(kind)
    message = str(caught.value)
    assert message.count(variable) == 1 and "\n" not in message, message
    assert f"{variable}." not in message  # the variable, not an item index
    assert "pw@" not in message  # credentials in a URL are never echoed


def test_node_urls_are_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDECAR_ELASTICSEARCH_URL", "http://a:9200/, https://b:9243")
    assert load_settings(ShipperSettings).elasticsearch_url == ("http://a:9200", "https://b:9243")
    monkeypatch.setenv("SIDECAR_ELASTICSEARCH_URL", " , ")
    assert load_settings(ShipperSettings).elasticsearch_url == ()


@pytest.mark.parametrize(("text", "host", "port"), [
    ("127.0.0.1:9464", "127.0.0.1", 9464), ("0.0.0.0:0", "0.0.0.0", 0), ("[::1]:9464", "::1", 9464),
    ("[::]:65535", "::", 65535), ("sidecar.local:80", "sidecar.local", 80),
    ("[2001:DB8:0:0::1]:1", "2001:db8::1", 1),
])
def test_listen_is_host_and_port(text: str, host: str, port: int) -> None:
    assert parse_listen(text) == ListenAddress(host, port)
    assert parse_listen(str(parse_listen(text))) == parse_listen(text)  # str() gives a value that parses back


@pytest.mark.parametrize("text", ["::1:9464", "[::1]", "[::1]:", "[nothost]:1", "[1.2.3.4]:1", "h:65536", "h:-1",
                                  "h:\u0663", "h: 1", ":1", "a b:1", "[::1]:1:2"])
def test_bad_listen_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(text)


def test_listen_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDECAR_LISTEN", "[::1]:0")
    assert load_settings(ShipperSettings).listen == ListenAddress("::1", 0)
    monkeypatch.setenv("SIDECAR_LISTEN", "::1:9464")
    with pytest.raises(ConfigError, match=r"SIDECAR_LISTEN: .*brackets"):
        load_settings(ShipperSettings)


@given(st.ip_addresses(), st.integers(0, 65535))
def test_every_ip_and_port_round_trips(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> None:
    text = f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
    address = parse_listen(text)
    assert ipaddress.ip_address(address.host) == ip and address.port == port
    assert str(address) == text if ip.version == 4 else parse_listen(str(address)) == address


@given(st.integers().filter(lambda p: not 0 <= p <= 65535))
def test_every_port_out_of_range_is_refused(port: int) -> None:
    with pytest.raises(ValueError, match="port"):
        parse_listen(f"127.0.0.1:{port}")


SECRET = "s3cr3t-value-never-printed"


def test_secrets_are_secret_str(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SIDECAR_HMAC_KEY", "SIDECAR_ELASTICSEARCH_API_KEY"):
        monkeypatch.setenv(name, SECRET)
    shipper, app = load_settings(ShipperSettings), load_settings(AppSettings)
    for s in (shipper, app):
        assert SECRET not in repr(s) and SECRET not in str(s) and SECRET not in s.model_dump_json()
        assert s.hmac_key_text() == SECRET
    assert shipper.elasticsearch_api_key is not None and shipper.elasticsearch_api_key.get_secret_value() == SECRET


def test_an_empty_key_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDECAR_HMAC_KEY", "")
    assert load_settings(AppSettings).hmac_key is None


def test_each_class_reads_its_own_fields() -> None:
    shared = set(SharedSettings.model_fields)
    assert {"spool_dir", "hmac_key", "service_name"} <= shared
    assert not (set(AppSettings.model_fields) - shared) & (set(ShipperSettings.model_fields) - shared)
    assert "elasticsearch_url" not in AppSettings.model_fields and "listen" not in AppSettings.model_fields
    assert "model_hosts" not in ShipperSettings.model_fields and "capture_content" not in ShipperSettings.model_fields
    with pytest.raises(ConfigError, match="SIDECAR_ELASTICSEARCH_URL"):
        load_settings(AppSettings, elasticsearch_url="http://a:9200")  # not an app option


def test_a_shipper_variable_does_not_stop_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app and the sidecar often share one environment: the app ignores what only the sidecar reads."""
    monkeypatch.setenv("SIDECAR_LISTEN", "nonsense")
    monkeypatch.setenv("SIDECAR_RETENTION_DAYS", "1")
    assert load_settings(AppSettings).service_name
