"""A base image's Python interpreter, inspected where it runs: a pex "complete platform".

A PEX for another platform is resolved against that platform's interpreter: its PEP 508 marker
environment and its compatible wheel tags (pex's ``--complete-platform``). They are facts of the
base image, so they are read from it, on a worker of that platform (native or emulated):
:func:`inspection_spec` is a tiny image whose one run executes pex's own
``pex3 interpreter inspect --markers --tags`` with the base's ``python3`` (pex itself comes
through the build context) and keeps only the JSON it writes; the build process solves it as any
image, and :func:`read_complete_platform` takes the JSON back out of the OCI archive.

The definition pins the base by digest and names the platform, so the inspection is cached by
exactly those (and pex's bytes): once per base digest and platform.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from typing import Any, Dict

from llbkit.errors import LlbkitError

__all__ = ["inspection_spec", "read_complete_platform", "InspectionError", "OUTPUT", "TOOL"]

OUTPUT = "complete-platform.json"
TOOL = "pex"  # the pex PEX, at the root of the inspection's build context
_WORK = "/llbkit-inspect"


class InspectionError(LlbkitError):
    """What an inspection returned is not a complete platform."""


def inspection_spec(base_ref: str, platform: str, *, tool_path: str = TOOL, name: str = "interpreter-inspection") -> Any:
    """A scratch image holding ``/complete-platform.json``: the interpreter ``python3`` of
    ``base_ref`` (a registry base; its config's PATH applies) on ``platform``, described by pex
    (the pex PEX at ``tool_path`` in the build context named ``context``)."""
    from llbkit.image import ContextSource, CopyStep, ImageSource, ImageSpec, RegistryBase, RunStep, ScratchBase

    inspect = ImageSpec(
        name=f"{name} ({base_ref})",
        base=RegistryBase(base_ref),
        steps=(
            CopyStep(ContextSource("context", tool_path, files=(("", True),)), f"{_WORK}/pex"),
            # pex unpacks itself under PEX_ROOT; the run has no network: it only describes.
            RunStep(("python3", f"{_WORK}/pex", "interpreter", "inspect", "--markers", "--tags",
                     "--indent", "1", "--output", f"{_WORK}/{OUTPUT}"), network="none"),
        ),
        env=(("PEX_SCRIPT", "pex3"), ("PEX_ROOT", f"{_WORK}/pex-root"), ("PEX_VERBOSE", "0")),
        platforms=(platform,),
    )
    return ImageSpec(name=name, base=ScratchBase(),
                     steps=(CopyStep(ImageSource(inspect, f"{_WORK}/{OUTPUT}"), f"/{OUTPUT}"),),
                     platforms=(platform,))


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    f = tar.extractfile(name)
    if f is None:
        raise InspectionError(f"the inspection's image has no {name}")
    return f.read()


def _blob(tar: tarfile.TarFile, digest: str) -> bytes:
    algo, _, hexdigest = digest.partition(":")
    return _member(tar, f"blobs/{algo}/{hexdigest}")


def read_complete_platform(oci_tar: bytes) -> Dict[str, Any]:
    """The complete platform JSON out of the OCI layout tar of :func:`inspection_spec`'s image
    (``path``, ``marker_environment``, ``compatible_tags``)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(oci_tar)) as tar:
            doc = json.loads(_member(tar, "index.json"))
            for _ in range(4):  # index.json -> (image index ->) manifest
                desc = doc["manifests"][0]
                doc = json.loads(_blob(tar, desc["digest"]))
                if "layers" in doc:
                    break
            layer = _blob(tar, doc["layers"][-1]["digest"])
        if layer[:2] == b"\x1f\x8b":
            layer = gzip.decompress(layer)
        with tarfile.open(fileobj=io.BytesIO(layer)) as t:
            names = [n for n in t.getnames() if n.lstrip("./") == OUTPUT]
            if not names:
                raise InspectionError(f"the inspection's layer has no {OUTPUT}")
            platform = json.loads(_member(t, names[0]))
    except (tarfile.TarError, KeyError, IndexError, ValueError, OSError) as e:
        raise InspectionError(f"the interpreter inspection's image is not readable: {e}") from None
    if not (isinstance(platform, dict) and isinstance(platform.get("marker_environment"), dict)
            and isinstance(platform.get("compatible_tags"), list) and platform["compatible_tags"]):
        raise InspectionError("the interpreter inspection returned no marker environment or compatible tags")
    return platform
