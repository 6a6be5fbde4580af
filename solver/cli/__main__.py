"""``python -m solver.cli``: the same as ``index-solver``."""

import sys

from solver.cli.main import main

sys.exit(main())
