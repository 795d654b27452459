"""Every user or configuration error of the `sidecar` command: one line naming the option or the variable,
exit 2 for usage/configuration, exit 1 for a failure found or a server unreachable, never a traceback.

Runs the installed `sidecar` command in a subprocess (what a user runs), plus generated input against the
parser and the settings in-process (hypothesis)."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.cli import _parser
from sidecar.config import AppSettings, ConfigError, SharedSettings, ShipperSettings, load_settings

BIN = pathlib.Path(sys.executable).parent / "sidecar"
KEY = "k" * 40

# A bad value for every variable, and a word the one-line message must contain.
BAD_VALUES: dict[str, list[str]] = {
    "SIDECAR_SPOOL_FSYNC": ["sometimes"],
    "SIDECAR_SPOOL_FSYNC_INTERVAL": ["0", "-1", "inf", "nan", "1e9", "fast"],
    "SIDECAR_SPOOL_SEGMENT_BYTES": ["10", "99999999999999", "1.5", "big"],
    "SIDECAR_SPOOL_SEGMENT_SECONDS": ["0", "inf", "-inf", "nan", "1e12"],
    "SIDECAR_SPOOL_QUEUE_SIZE": ["0", "99999999999", "-5"],
    "SIDECAR_SPOOL_MAX_BYTES": ["-1", "9" * 30],
    "SIDECAR_CAPTURE_CONTENT": ["perhaps"],
    "SIDECAR_MAX_BODY_BYTES": ["-1", "99999999999999"],
    "SIDECAR_MAX_CONTENT_CHARS": ["-1", "99999999999999"],
    "SIDECAR_MODEL_HOSTS": ["bad host", "vllm:99999", "a.example=Bad Provider", "h:port"],
    "SIDECAR_EXCLUDE_HOSTS": ["a b", "host=provider", "h:0"],
    "SIDECAR_USER_HEADER": ["x user", "x:y"],
    "SIDECAR_CONVERSATION_HEADER": ["x conv", "x:y"],
    "SIDECAR_REDACT_RULES": ["[", "{}", '[{"name": "TICKET"}]', '[{"name": "T", "pattern": "("}]',
                             '[{"name": "T", "pattern": "a", "validator": "nope"}]'],
    "SIDECAR_REDACT_IP": ["maybe"],
    "SIDECAR_MAX_MODEL_LABELS": ["0", "1e3", "99999999"],
    "SIDECAR_METRICS_PORT": ["-1", "65536", "http"],
    "SIDECAR_METRICS_HOST": ["not a host", "a/b", ""],
    "SIDECAR_INDEX_PREFIX": ["Upper", "-lead", "a*b", ""],
    "SIDECAR_RETENTION_DAYS": ["10", "0", "-1", "99999999999", "ninety"],
    "SIDECAR_ALLOW_SHORT_RETENTION": ["sure"],
    "SIDECAR_BATCH_SIZE": ["0", "99999999"],
    "SIDECAR_POLL_SECONDS": ["0", "inf", "nan", "-1", "1e9", "soon"],
    "SIDECAR_LISTEN": ["nonsense", ":9464", "0.0.0.0:", "0.0.0.0:99999", "host name:1", "0.0.0.0:http", "::1:9464",
                       "[::g]:9464", "[localhost]:1", "0.0.0.0:\u0663"],
    "SIDECAR_SPOOL_GROUP": ["no-such-group-llm-audit", "99999999999999999999"],
    "SIDECAR_HTTP_MAX_CONNECTIONS": ["0", "99999999", "many"],
    "SIDECAR_DIGEST_GRACE_SECONDS": ["0", "-1", "inf", "nan", "1e12", "soon"],
}
# Free text or paths: any string is a valid value (paths are checked where used, below).
FREE_FORM = {"SIDECAR_SERVICE_NAME", "SIDECAR_HMAC_KEY", "SIDECAR_HMAC_KEY_FILE", "SIDECAR_REDACT_ALLOW",
             "SIDECAR_SPOOL_DIR", "SIDECAR_STATE_DIR", "SIDECAR_STORE_PATH", "SIDECAR_AUDIT_KEYRING",
             "SIDECAR_PRICES_FILE"}  # a path, read where calls are priced (the app)
# The Elasticsearch connection settings are validated with the Elasticsearch client settings.
EVERY = {**AppSettings.model_fields, **ShipperSettings.model_fields}
# The variables only the instrumented app reads: checked by instrument(), not by the `sidecar` command.
APP_ONLY = {f"SIDECAR_{n.upper()}" for n in AppSettings.model_fields if n not in SharedSettings.model_fields}
ELASTICSEARCH = {name for name in (f"SIDECAR_{n.upper()}" for n in EVERY)
                 if name.startswith("SIDECAR_ELASTICSEARCH_")}

COMMANDS = [["run", "--once"], ["query"], ["advise"], ["audit", "verify"], ["retention", "verify"],
            ["retention", "apply", "--dry-run"], ["dashboards", "install", "--kibana", "http://127.0.0.1:9",
                                                  "--dry-run"]]


@pytest.fixture
def env(tmp_path: pathlib.Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    return {**clean, "SIDECAR_SPOOL_DIR": str(tmp_path / "spool"), "SIDECAR_HMAC_KEY": KEY}


def run(args: list[str], env: dict[str, str], cwd: pathlib.Path | None = None,
        timeout: float = 120) -> tuple[int, str, str]:
    out = subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    return out.returncode, out.stdout, out.stderr


def one_line(code: int, stdout: str, stderr: str, expected: int, *words: str) -> str:
    assert "Traceback" not in stdout + stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{stderr}"
    assert code == expected, f"exit {code}, expected {expected}: {stderr}"
    for word in words:
        assert word in lines[0], f"{word!r} not named in {lines[0]!r}"
    return lines[0]


def test_every_variable_is_covered() -> None:
    every = {f"SIDECAR_{name.upper()}" for name in EVERY}
    assert set(BAD_VALUES) | FREE_FORM | ELASTICSEARCH == every, every - set(BAD_VALUES) - FREE_FORM - ELASTICSEARCH


@pytest.mark.parametrize("variable", sorted(set(BAD_VALUES) - APP_ONLY))
def test_bad_variable_is_one_line_naming_it_exit_2(variable: str, env: dict[str, str]) -> None:
    for value in BAD_VALUES[variable]:
        for command in (["query"], ["run", "--once"]):
            code, out, err = run(command, {**env, variable: value})
            one_line(code, out, err, 2, variable)


@pytest.mark.parametrize("variable", sorted(set(BAD_VALUES) & APP_ONLY))
def test_bad_app_variable_stops_instrument_naming_it(variable: str, env: dict[str, str]) -> None:
    """The app's variables stop instrument() at start-up (before any call), one line naming the variable."""
    code = ("import sys, sidecar\ntry:\n    sidecar.instrument()\nexcept sidecar.ConfigError as exc:\n"
            "    print(exc, file=sys.stderr)\n    sys.exit(2)\n")
    for value in BAD_VALUES[variable]:
        out = subprocess.run([sys.executable, "-c", code], env={**env, variable: value}, capture_output=True,
                             text=True, timeout=120)
        one_line(out.returncode, out.stdout, out.stderr, 2, variable)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_subcommand_checks_the_configuration(command: list[str], env: dict[str, str]) -> None:
    for variable, value in (("SIDECAR_POLL_SECONDS", "inf"), ("SIDECAR_LISTEN", "::1:9464"),
                            ("SIDECAR_MAX_MODEL_LABELS", "0"), ("SIDECAR_RETENTION_DAYS", "99999999999")):
        code, out, err = run(command, {**env, variable: value})
        one_line(code, out, err, 2, variable)


USAGE_ERRORS = [
    (["query", "--since", "99999999999d"], "--since"),
    (["query", "--since", "yesterday"], "--since"),
    (["query", "--until", "2026-13-45"], "--until"),
    (["query", "--limit", "-1"], "--limit"),
    (["query", "--limit", "many"], "--limit"),
    (["query", "--status", "1000"], "--status"),
    (["advise", "--max-timeout", "nan"], "--max-timeout"),
    (["advise", "--max-timeout", "inf"], "--max-timeout"),
    (["advise", "--max-timeout", "-3"], "--max-timeout"),
    (["advise", "--since", "1e9d"], "--since"),
    (["audit", "verify", "--since", "99999999999999999999d"], "--since"),
    (["dashboards", "install", "--kibana", "ftp://k"], "--kibana"),
    (["dashboards", "install", "--grafana", "grafana:3000"], "--grafana"),
    (["dashboards", "install", "--kibana", "http://k:5601", "--index-prefix", "BAD*"], "--index-prefix"),
    (["dashboards", "install", "--kibana", "http://k:5601", "--dir", "/nonexistent-dashboards"], "--dir"),
    (["dashboards", "install"], "--kibana"),
    (["run", "--forever"], "--forever"),
    (["retention"], "apply"),
    (["retention", "delete"], "delete"),
    (["audit"], "verify"),
    (["nosuch"], "nosuch"),
    ([], "COMMAND"),
]


@pytest.mark.parametrize(("args", "word"), USAGE_ERRORS, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_usage_errors_are_one_line_exit_2(args: list[str], word: str, env: dict[str, str]) -> None:
    code, out, err = run(args, env)
    one_line(code, out, err, 2, word)


def test_version(env: dict[str, str]) -> None:
    code, out, err = run(["--version"], env)
    assert code == 0 and err == ""
    from importlib.metadata import version

    assert out.strip() == f"sidecar {version('llm-audit-sidecar')}"


def test_a_state_dir_that_is_a_file(env: dict[str, str], tmp_path: pathlib.Path) -> None:
    (tmp_path / "file").write_text("x")
    for command in COMMANDS[:6]:
        code, out, err = run(command, {**env, "SIDECAR_STATE_DIR": str(tmp_path / "file")})
        one_line(code, out, err, 2, "SIDECAR_STATE_DIR", "not a directory")
        code, out, err = run(command, {**env, "SIDECAR_SPOOL_DIR": str(tmp_path / "file" / "spool")})
        one_line(code, out, err, 2, "SIDECAR_SPOOL_DIR", "not a directory")
    (tmp_path / "dir.db").mkdir()
    code, out, err = run(["query"], {**env, "SIDECAR_STORE_PATH": str(tmp_path / "dir.db")})
    one_line(code, out, err, 2, "SIDECAR_STORE_PATH")
    no_key = {k: v for k, v in env.items() if k != "SIDECAR_HMAC_KEY"}
    code, out, err = run(["run", "--once"], {**no_key, "SIDECAR_HMAC_KEY_FILE": str(tmp_path / "dir.db")})
    one_line(code, out, err, 2, "SIDECAR_HMAC_KEY_FILE")


def test_an_invalid_checkpoint(env: dict[str, str], tmp_path: pathlib.Path) -> None:
    """An unreadable checkpoint is not a user error: it is kept aside, the spool is re-read (ids dedupe) and
    the reset is marked in the digest chain; the run goes on with one ERROR line naming the file."""
    state = tmp_path / "spool" / ".sidecar"
    state.mkdir(parents=True)
    for garbage in (b"{bad", b"[]", b'{"offsets": {"a": "x"}}', b"\xff\xfe\x00"):
        (state / "checkpoint.json").write_bytes(garbage)
        code, out, err = run(["run", "--once"], env)
        assert code == 0 and "Traceback" not in out + err, err
        errors = [line for line in err.splitlines() if " ERROR " in line]
        assert len(errors) == 1 and "checkpoint" in errors[0] and "unreadable" in errors[0], err
        assert len(list(state.glob("checkpoint.json.unreadable-*"))) >= 1


def test_a_zeroed_store_header(env: dict[str, str], tmp_path: pathlib.Path) -> None:
    code, _, err = run(["run", "--once"], env)
    assert code == 0, err
    store = tmp_path / "spool" / ".sidecar" / "audit.db"
    with open(store, "r+b") as fh:
        fh.write(b"\0" * 100)
    for command in (["query"], ["advise"], ["audit", "verify"], ["run", "--once"]):
        code, out, err = run(command, env)
        one_line(code, out, err, 1)
        assert "not a database" in err, err


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_busy_port(env: dict[str, str], busy_port: int) -> None:
    code, out, err = run(["run"], {**env, "SIDECAR_LISTEN": f"127.0.0.1:{busy_port}"}, timeout=60)
    one_line(code, out, err, 2, "SIDECAR_LISTEN", "in use")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("url", ["not-a-url", "ftp://es:9200", "http://", "http://es:99999",
                                 "http://es:9200,elasticsearch"])
def test_a_malformed_elasticsearch_url(url: str, env: dict[str, str]) -> None:
    for command in (["run", "--once"], ["advise"], ["audit", "verify"], ["retention", "verify"]):
        code, out, err = run(command, {**env, "SIDECAR_ELASTICSEARCH_URL": url})
        one_line(code, out, err, 2, "SIDECAR_ELASTICSEARCH_URL")


def test_unreachable_servers_exit_1(env: dict[str, str]) -> None:
    port = closed_port()
    for args, word in ((["--kibana", f"http://127.0.0.1:{port}"], "Kibana"),
                       (["--grafana", f"http://127.0.0.1:{port}"], "Grafana"),
                       (["--kibana", "http://no-such-host.invalid:5601"], "Kibana")):
        code, out, err = run(["dashboards", "install", *args], env)
        one_line(code, out, err, 1, word, "unreachable")
    es = {**env, "SIDECAR_ELASTICSEARCH_URL": f"http://127.0.0.1:{port}"}
    for command in (["advise"], ["audit", "verify"], ["retention", "verify"]):
        code, out, err = run(command, es)
        assert "Traceback" not in out + err and code == 1, err
        assert len(err.strip().splitlines()) + len(out.strip().splitlines()) <= 3, out + err


# ------------------------------------------------------------------ generated input, in-process


def _parse(argv: list[str]) -> int:
    try:
        _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option=st.sampled_from([["query", "--since"], ["query", "--until"], ["query", "--limit"],
                               ["query", "--status"], ["advise", "--max-timeout"], ["advise", "--since"],
                               ["audit", "verify", "--since"]]),
       value=st.one_of(st.text(max_size=30), st.integers().map(str), st.floats().map(str),
                       st.integers(min_value=0, max_value=10**40).map(lambda n: f"{n}d")))
def test_generated_arguments_parse_or_fail_in_one_line(option: list[str], value: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    if value.startswith("-") or "\x00" in value:
        return  # argparse reads a leading '-' as another option; NUL cannot be in an argv
    code = _parse([*option, value])
    err = capsys.readouterr().err
    assert code in (0, 2)
    if code:
        assert len(err.strip().splitlines()) == 1 and option[-1] in err, err


@settings(max_examples=300, deadline=None)
@given(variable=st.sampled_from(sorted(BAD_VALUES)),
       value=st.one_of(st.text(max_size=40), st.integers().map(str), st.floats().map(str)))
def test_generated_variables_load_or_fail_naming_them(variable: str, value: str) -> None:
    if "\x00" in value:
        return  # cannot be in an environment variable
    saved = {k: v for k, v in os.environ.items() if k.startswith("SIDECAR_")}
    try:
        for k in saved:
            del os.environ[k]
        os.environ[variable] = value
        try:
            load_settings(AppSettings if variable in APP_ONLY else ShipperSettings)
        except ConfigError as exc:
            message = str(exc)
            assert variable in message and "\n" not in message, message
    finally:
        os.environ.pop(variable, None)
        os.environ.update(saved)


def test_bad_key_rings_and_anchors(env: dict[str, str], tmp_path: pathlib.Path) -> None:
    """Files handed to `audit verify`: a directory, an empty ring, a ring with a short key, an anchor with a
    malformed field. One line naming the file, exit 2."""
    code, _, err = run(["run", "--once"], env)
    assert code == 0, err
    empty = tmp_path / "empty.ring"
    empty.write_text("# nothing here\n")
    short = tmp_path / "short.ring"
    short.write_text("abc\n")
    anchor = tmp_path / "heads.jsonl"
    anchor.write_text('{"sidecar.chain.id": "a", "sidecar.digest.seq": "x", "sidecar.digest.hash": "h"}\n')
    for args, word in ((["--keyring", str(tmp_path)], str(tmp_path)), (["--keyring", str(empty)], "no key"),
                       (["--keyring", str(short)], "at least 16"), (["--anchor", str(anchor)], "digest.seq")):
        code, out, err = run(["audit", "verify", *args], env)
        one_line(code, out, err, 2, word)
