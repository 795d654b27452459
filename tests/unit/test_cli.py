"""The `sidecar` command's parser: every command reaches a handler through set_defaults(func=...), the
handlers take (settings, args), and the exit-code rules hold in-process."""

from __future__ import annotations

import argparse
import inspect
import os
import pathlib
from collections.abc import Iterator

import pytest

from sidecar import cli, daemon
from sidecar.cli import _parser, main

# One argument list per leaf command, with what each requires.
LEAVES = {
    ("run",): [], ("query",): [], ("advise",): [], ("audit", "verify"): [], ("audit", "anchor"): [],
    ("retention", "apply"): [], ("retention", "verify"): [], ("dashboards", "install"): [],
    ("dashboards", "path"): [], ("erase",): ["--user", "u", "--reason", "r"], ("hold", "list"): [],
    ("hold", "add"): ["--user", "u", "--reason", "r"], ("hold", "remove"): ["h1", "--reason", "r"],
}


def _leaves(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix
    for action in subs:
        for name, child in action.choices.items():
            yield from _leaves(child, (*prefix, name))


def test_the_table_covers_every_command() -> None:
    assert set(_leaves(_parser())) == set(LEAVES)


@pytest.mark.parametrize("leaf", sorted(LEAVES), ids=" ".join)
def test_every_command_dispatches_to_a_handler(leaf: tuple[str, ...]) -> None:
    args = _parser().parse_args([*leaf, *LEAVES[leaf]])
    assert callable(args.func)
    assert args.func.__module__.startswith("sidecar.daemon"), args.func  # handlers live with the service
    params = list(inspect.signature(args.func).parameters)
    assert params == (["args"] if leaf == ("dashboards", "path") else ["settings", "args"]), (leaf, params)


def test_each_command_has_its_own_handler() -> None:
    handlers = [_parser().parse_args([*leaf, *LEAVES[leaf]]).func for leaf in LEAVES]
    hold = [h for leaf, h in zip(LEAVES, handlers, strict=True) if leaf[0] == "hold"]
    assert len(set(hold)) == 1  # hold add|remove|list: one handler that reads hold_command
    assert len(set(handlers)) == len(handlers) - len(hold) + 1


def test_cli_module_holds_no_command_bodies() -> None:
    source = inspect.getsource(cli)
    assert "if args.command ==" not in source and "elif" not in source
    assert len(source.splitlines()) < 200
    assert daemon.run_service.__module__ == "sidecar.daemon._service"


@pytest.fixture
def env(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    for name in [k for k in os.environ if k.startswith("SIDECAR_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SIDECAR_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("SIDECAR_HMAC_KEY", "k" * 40)
    return tmp_path


def test_a_bad_shipper_variable_is_one_line_exit_2(env: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SIDECAR_LISTEN", "::1:9464")
    assert main(["query"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SIDECAR_LISTEN" in err and "brackets" in err


def test_dashboards_path_needs_no_configuration(env: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SIDECAR_RETENTION_DAYS", "1")  # would stop every other command
    assert main(["dashboards", "path"]) == 0
    assert pathlib.Path(capsys.readouterr().out.strip(), "grafana").is_dir()


def test_a_sidecar_error_in_a_handler_is_one_line_with_its_exit_code(
        env: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    ring = env / "ring"
    ring.write_text("# no keys\n")
    assert main(["audit", "verify", "--keyring", str(ring)]) == 2  # AuditUsageError is a ConfigError
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
