"""``python -m llbkit``: the llbkit command line (see :mod:`llbkit.cli.main`)."""

import sys

from llbkit.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
