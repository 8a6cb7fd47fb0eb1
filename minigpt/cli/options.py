"""Command-line options shared by `minigpt` and `minigpt-tui` (light: no torch)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence


def add_config_args(parser: argparse.ArgumentParser, data: bool = True) -> None:
    """--config, --set and (with data) --data: where the configuration comes from."""
    parser.add_argument("--config", metavar="F", help="TOML config (default: ./config.toml)")
    if data:
        parser.add_argument("--data", metavar="P", help="corpus file or folder (sets data.path)")
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one key, e.g. --set train.max_iters=300 (repeatable)",
    )


def overrides_with_data(data: str | None, overrides: Sequence[str]) -> list[str]:
    """--data as a data.path override, ahead of the --set ones."""
    return ([f"data.path={json.dumps(data)}"] if data else []) + list(overrides)
