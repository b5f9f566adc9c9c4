"""Building images from solve jobs (no Pants here).

- :mod:`~llbkit.builder.job`: the content of one image build (definitions, configs, export
  options; or a frontend call per platform: a Dockerfile image), as files: what a build's
  result is a function of;
- :mod:`~llbkit.builder.frontends`: which frontend builds a Dockerfile (BuildKit's own, or the
  custom one a ``# syntax=`` directive names, run through the gateway pinned by digest) and
  named contexts made of another image's LLB;
- :mod:`~llbkit.builder.oci_layouts`: an image built elsewhere (a Dockerfile image's OCI
  layout tar) as the base of a container_image, served to buildkitd from the session;
- :mod:`~llbkit.builder.settings`: the machine settings of a build (workers, TLS, credentials,
  secret values...): how it is built, never part of a cache key;
- :mod:`~llbkit.builder.lazy_pool`: the worker pool a build solves on (configured workers, or
  the auto-started local buildkitd), made only when something must be solved;
- :mod:`~llbkit.builder.bases`: registry bases resolved (tag -> digest, config per platform)
  from the registry directly, a worker only as a fallback;
- :mod:`~llbkit.builder.base_lock`: the base-image lockfile (what each tag named, per platform);
- :mod:`~llbkit.builder.secrets`: the secrets an image mounts and where their values come from;
- :mod:`~llbkit.builder.build`: solve each platform on the pool in parallel, assemble one index
  and write the OCI layout tar (or docker archive) and the ``image.json`` record;
- :mod:`~llbkit.builder.process`: the commands the Pants backend runs as build processes.
"""

from __future__ import annotations

from llbkit.builder.bases import BaseResolveError, resolve_bases, resolved_from_json, resolved_to_json
from llbkit.builder.build import BuildOptions, MissingInputError, build_job
from llbkit.builder.job import ExportOptions, FrontendCall, JobError, JobPlatform, SolveJob
from llbkit.builder.lazy_pool import LazyPool, NoWorkersConfiguredError, parse_worker
from llbkit.builder.secrets import mounted_secrets, parse_secret, parse_secrets
from llbkit.builder.settings import MachineSettings, SettingsError, WorkerSetting, load_settings

__all__ = [
    "BuildOptions", "MissingInputError", "build_job",
    "ExportOptions", "FrontendCall", "JobError", "JobPlatform", "SolveJob",
    "MachineSettings", "SettingsError", "WorkerSetting", "load_settings",
    "resolve_bases", "resolved_from_json", "resolved_to_json", "BaseResolveError",
    "LazyPool", "NoWorkersConfiguredError", "parse_worker",
    "mounted_secrets", "parse_secret", "parse_secrets",
]
