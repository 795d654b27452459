"""What the bench scripts share: their command line's common options, progress on stderr, and their
end: results (figures and plots) written next to the others and a Markdown table printed."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from collections.abc import Callable
from typing import Any


def bench_parser(doc: str | None, out: pathlib.Path, quick_help: str | None = None) -> argparse.ArgumentParser:
    """A parser with the script's first doc line, ``--quick`` and ``--out`` (default ``out``)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--out", type=pathlib.Path, default=out)
    return parser


def plot_lines(data: dict[str, Any]) -> list[str]:
    """The Markdown image links of the plots a run made (none when it made none)."""
    return [" ".join(f"![{p}]({p})" for p in data["plots"]), ""] if data.get("plots") else []


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def save_results(data: dict[str, Any], out: pathlib.Path, started: float, markdown: Callable[[dict[str, Any]], str],
                 plot: Callable[[dict[str, Any], pathlib.Path], list[str]] | None = None) -> int:
    """Plots (when given) into ``out``'s folder, the run time, ``data`` as JSON in ``out``, then the table."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if plot is not None:
        try:
            data["plots"] = plot(data, out.parent)
        except Exception as exc:  # a missing matplotlib must not lose the figures
            data["plots"] = []
            data["plot_error"] = f"{type(exc).__name__}: {exc}"
    data["seconds"] = time.time() - started
    out.write_text(json.dumps(data, indent=1))
    print(markdown(data))
    return 0
