"""The size limits of docs/architecture.md, checked by `make lint`: no module over 500 lines (rule tables
excepted, listed below), no function over 80 lines. Prints each offender; exit 1 when there is one."""

from __future__ import annotations

import ast
import pathlib
import sys

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
#: Modules that are tables (one entry per rule or field), where splitting would hide the table.
TABLES: frozenset[str] = frozenset()


def offenders(root: pathlib.Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n") + 1
        if lines > MAX_MODULE_LINES and path.as_posix() not in TABLES:
            found.append(f"{path}: {lines} lines (limit {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{path}:{node.lineno}: {node.name} is {length} lines (limit {MAX_FUNCTION_LINES})")
    return found


def main(argv: list[str]) -> int:
    found = offenders(pathlib.Path(argv[1] if len(argv) > 1 else "sidecar"))
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
