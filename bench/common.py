"""What every bench script does at its end: log progress to stderr, write its results (figures and
plots) next to the others, and print its Markdown table."""

from __future__ import annotations

import json
import pathlib
import sys
import time
from collections.abc import Callable
from typing import Any


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
