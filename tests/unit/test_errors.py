"""One error tree: every exception class the package defines derives from SidecarError, and the command
turns each into one line and the exit code the class carries."""

from __future__ import annotations

import ast
import pathlib

import pytest

import sidecar
from sidecar._cli_support import explain
from sidecar.errors import ConfigError, ServerError, SidecarError

PACKAGE = pathlib.Path(sidecar.__file__).parent
BUILTIN_ROOTS = {"Exception", "BaseException", "ValueError", "RuntimeError", "OSError", "TypeError", "KeyError",
                 "LookupError", "IOError", "ArithmeticError"}


def _exception_classes() -> list[tuple[str, str, list[str]]]:
    """(module path, class name, base names) of every class in the package whose bases name an exception."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases]
                if any(b in BUILTIN_ROOTS or b.endswith(("Error", "Exception")) for b in bases):
                    found.append((str(path.relative_to(PACKAGE)), node.name, bases))
    return found


def test_the_scan_finds_the_known_errors() -> None:
    names = {name for _, name, _ in _exception_classes()}
    assert {"ConfigError", "RedactionError", "EsUnavailable", "ClusterError", "SinkStopped"} <= names


def test_every_exception_class_derives_from_sidecar_error() -> None:
    import importlib

    for path, name, _ in _exception_classes():
        module = "sidecar." + path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, SidecarError), f"{path}: {name} does not derive from SidecarError"


def test_exit_codes_follow_the_class() -> None:
    from sidecar.cost import PricesFileError
    from sidecar.retention import ClusterError

    assert ConfigError.exit_code == 2 and PricesFileError.exit_code == 2
    assert SidecarError.exit_code == 1 and ClusterError.exit_code == 1 and issubclass(ClusterError, ServerError)
    assert issubclass(ConfigError, ValueError)  # callers that catch ValueError still catch it


@pytest.mark.parametrize(("exc", "code"), [
    (ConfigError("invalid configuration: SIDECAR_X: bad"), 2), (ServerError("no node answered"), 1),
    (SidecarError("record\nbroken"), 1),
])
def test_the_command_maps_each_error_to_one_line_and_its_code(exc: SidecarError, code: int) -> None:
    line, got = explain(exc, "query", None)
    assert got == code and "\n" not in line and str(exc).split()[-1] in line
