"""``python -m llbkit``: the llbkit command line (see :mod:`llbkit.cli.main`)."""

from llbkit.cli.main import run

if __name__ == "__main__":
    run()
