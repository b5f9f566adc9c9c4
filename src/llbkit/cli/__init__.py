"""The ``llbkit`` command line: ``build``, ``dump-llb``, ``workers``, ``du``, ``prune``."""
