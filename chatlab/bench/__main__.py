"""``python -m chatlab.bench``: the command line is in ``chatlab.bench.cli``."""

import sys

try:
    from chatlab.bench.cli import main
except ModuleNotFoundError as error:  # the bench's own needs, not in chatlab's core
    if error.name != "psutil":
        raise
    sys.exit(f"chatlab.bench needs {error.name}: python -m pip install 'chatlab[lab]'")

sys.exit(main())
