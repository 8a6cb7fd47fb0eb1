"""The `minigpt-tui` command."""

import sys


def main() -> int:
    """Say the dashboard is not built yet and point at the headless trainer."""
    print(
        "minigpt-tui: the dashboard is not built yet; train with `minigpt train` meanwhile",
        file=sys.stderr,
    )
    return 1
