"""Building image specs into packaged outputs, cached by content (no Pants here).

- :mod:`~llbkit.builder.cache`: the content key of a build and a persistent, content-addressed
  cache of its outputs under ``$LLBKIT_CACHE/images/``;
- :mod:`~llbkit.builder.workers`: which buildkitd solves which platform (configured workers, or
  the auto-started local one);
- :mod:`~llbkit.builder.build`: resolve registry bases, solve each platform, assemble one index
  and write the OCI layout tar (or docker archive) and the ``image.json`` record.
"""

from __future__ import annotations

from llbkit.builder.build import (
    BuildOptions,
    BuildOutputs,
    build_outputs,
    cached_outputs,
    outputs_key,
    resolve_bases,
)
from llbkit.builder.cache import ImageCache, build_key, code_fingerprint
from llbkit.builder.workers import WorkerSpec, Workers, parse_worker

__all__ = [
    "BuildOptions", "BuildOutputs", "build_outputs", "cached_outputs", "outputs_key", "resolve_bases",
    "ImageCache", "build_key", "code_fingerprint",
    "WorkerSpec", "Workers", "parse_worker",
]
