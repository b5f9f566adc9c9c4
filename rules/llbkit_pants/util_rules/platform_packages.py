"""Packages built per platform of an image: the union other backends implement.

A `copy()` of a packaged target into an image normally copies its one package. A package whose
bytes depend on the platform it runs on (a `pex_binary` with native wheels) must instead be
built for each platform of the image: a member of the `PlatformPackageRequest` union says which
field sets it builds (`is_for`) and builds one for one platform, returning a `PlatformPackage`.
`llbkit_pants.python` is the member for `pex_binary` (enable it beside `pants.backend.python`).

`origin` is JSON saying what the package was built for, shown by `image.json` (`copies`) and
`pants llb`: `{"source": "inspected", "base", "base_digest", "machine", "python"}` (the base
image's interpreter), `{"source": "file", "target"}` (a complete-platform file) or
`{"source": "pex_binary", "target"}` (the target's own platforms).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from pants.core.goals.package import PackageFieldSet
from pants.engine.addresses import Address
from pants.engine.environment import EnvironmentName
from pants.engine.fs import Digest
from pants.engine.unions import union


# The environment is in scope, as for PackageFieldSet: members build with Pants' processes.
@union(in_scope_types=[EnvironmentName])
@dataclass(frozen=True)
class PlatformPackageRequest:
    field_set: PackageFieldSet
    image: Address  # the container_image that copies it
    index: int  # its copy step, for errors
    platform: str
    base: Optional[str]  # the registry base at the root of the image's chain (None: scratch)
    file: Optional[str] = None  # the image's `complete_platforms` entry for the platform

    @classmethod
    def is_for(cls, field_set: PackageFieldSet) -> bool:
        """Whether this member builds `field_set`'s package per platform."""
        return False


@dataclass(frozen=True)
class PlatformPackage:
    """The package built for `platform` (its files, as its package rule names them)."""

    platform: str
    digest: Digest
    origin: str


def describe(origin: str) -> str:
    """What a package was built for, in words, from a `PlatformPackage.origin`."""
    how = json.loads(origin)
    if how.get("source") == "inspected":
        return (f"python3 {how.get('python')} on {how.get('machine')}, inspected in "
                f"{how.get('base')}@{how.get('base_digest')}")
    if how.get("source") == "file":
        return f"the complete platform in {how.get('target')}"
    return f"the platforms of {how.get('target')} itself"
