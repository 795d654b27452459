"""Write the retention policy files: ``python -m sidecar.retention.generate [--days N] [--prefix P] [--out DIR]``.

The files under ``retention/`` in the repository are this command's output for the defaults
(90 days, prefix ``llm-audit``); a test keeps them identical.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sidecar.retention._policies import (
    DEFAULT_PREFIX,
    DEFAULT_RETENTION_DAYS,
    RetentionConfigError,
    check_retention_days,
    generated_files,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sidecar.retention.generate",
        description="Write the ILM policy, index template, data stream lifecycle and OpenSearch ISM policy "
        "for one retention limit.",
    )
    parser.add_argument("--days", type=int, default=DEFAULT_RETENTION_DAYS,
                        help=f"days every record is kept (default {DEFAULT_RETENTION_DAYS}, at least 90)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"index prefix (default {DEFAULT_PREFIX})")
    parser.add_argument("--out", type=Path, default=Path("retention"), help="directory to write (default retention)")
    parser.add_argument("--allow-short-retention", action="store_true",
                        help="explicit override to generate a limit below 90 days")
    args = parser.parse_args(argv)
    try:
        check_retention_days(args.days, allow_short=args.allow_short_retention)
    except RetentionConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for name, content in generated_files(args.days, prefix=args.prefix).items():
        (args.out / name).write_text(content, encoding="utf-8")
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
