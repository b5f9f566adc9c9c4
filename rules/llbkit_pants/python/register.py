"""llbkit's Python support: a `pex_binary` copied into a `container_image` is built for each of
the image's platforms (its interpreter inspected from the base image, or named by the image's
`complete_platforms`), through Pants' own pex rules.

Enable it beside Pants' Python backend and llbkit's:
`backend_packages = ["pants.backend.python", "llbkit_pants", "llbkit_pants.python"]`.
This module only wires.
"""

from llbkit_pants.python import complete_platforms, pex_platforms


def rules():
    return [*complete_platforms.rules(), *pex_platforms.rules()]
