"""`python -m tui`: the same as the `minigpt-tui` command (each browser tab runs this)."""

from tui.cli import main

raise SystemExit(main())
