"""Reports the machine it runs on and where markupsafe's C extension was loaded from: the
extension must import (markupsafe would silently fall back to pure Python otherwise)."""

import json
import platform

import markupsafe
from markupsafe import _speedups  # the C extension itself: an ImportError if the wheel is foreign

if __name__ == "__main__":
    print(json.dumps({
        "machine": platform.machine(),
        "speedups": _speedups.__file__,
        "escaped": str(markupsafe.escape("<pyarch>")),
    }, sort_keys=True))
