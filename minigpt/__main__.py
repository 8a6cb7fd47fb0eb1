"""`python -m minigpt` is the `minigpt` command."""

import sys

from minigpt.cli.main import main

sys.exit(main())
