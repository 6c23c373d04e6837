"""``python -m chatlab.bench``: the command line is in ``chatlab.bench.cli``."""

import sys

from chatlab.bench.cli import main

sys.exit(main())
