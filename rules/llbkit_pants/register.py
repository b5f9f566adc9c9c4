"""llbkit's Pants backend: `container_image` targets built with BuildKit.

Enable with `backend_packages = ["llbkit_pants"]` (and `pythonpath` pointing at rules/ and src/).
This module only wires the backend together.
"""


def target_types():
    return []


def rules():
    return []
