"""python -m bridge.cli"""

import sys

from bridge.cli.main import main

sys.exit(main())
