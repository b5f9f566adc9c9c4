"""Building image specs into packaged outputs, cached by content (no Pants here).

- :mod:`~llbkit.builder.cache`: the content key of a build and a persistent, content-addressed
  cache of its outputs under ``$LLBKIT_CACHE/images/``;
- :mod:`~llbkit.builder.lazy_pool`: the worker pool a build solves on (configured workers, or
  the auto-started local buildkitd), made only when something must be solved;
- :mod:`~llbkit.builder.bases`: registry bases resolved (tag -> digest, config per platform)
  from the registry directly, a worker only as a fallback;
- :mod:`~llbkit.builder.secrets`: the secrets an image mounts and where their values come from;
- :mod:`~llbkit.builder.build`: solve each platform on the pool in parallel, assemble one index
  and write the OCI layout tar (or docker archive) and the ``image.json`` record.
"""

from __future__ import annotations

from llbkit.builder.bases import BaseResolveError, resolve_bases
from llbkit.builder.build import BuildOptions, BuildOutputs, build_outputs, cached_outputs, outputs_key
from llbkit.builder.cache import ImageCache, build_key, code_fingerprint
from llbkit.builder.lazy_pool import LazyPool, NoWorkersConfiguredError, parse_worker
from llbkit.builder.secrets import MissingSecretError, parse_secret, parse_secrets, secrets_for

__all__ = [
    "BuildOptions", "BuildOutputs", "build_outputs", "cached_outputs", "outputs_key",
    "resolve_bases", "BaseResolveError",
    "ImageCache", "build_key", "code_fingerprint",
    "LazyPool", "NoWorkersConfiguredError", "parse_worker",
    "MissingSecretError", "parse_secret", "parse_secrets", "secrets_for",
]
