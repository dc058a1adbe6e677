"""`python -m bridge` is the `scorebridge` command (used to start the daemon detached)."""

import sys

from bridge.cli import main

sys.exit(main())
