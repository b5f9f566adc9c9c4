"""The typed image IR between frontends and the LLB compiler: pure data and pure functions.

::

    from llbkit.image import ImageSpec, RegistryBase, CopyStep, RunStep, ContextSource, lower

    spec = ImageSpec(
        name="//app:img",
        base=RegistryBase("registry.example.com/busybox:1.36"),
        steps=(CopyStep(ContextSource("context", "app/main.sh"), "/app/"), RunStep("chmod +x /app/main.sh")),
        env={"PORT": "8080"}, workdir="/app", entrypoint=["/app/main.sh"],
        platforms=["linux/amd64", "linux/arm64"],
    )
    for build in plan(spec, base_configs={...}, context_digest="sha256:..."):
        build.definition.to_bytes(), build.oci_config()

Steps run in order, as Dockerfile instructions: ``EnvStep``/``UserStep``/``WorkdirStep`` (ENV,
USER, WORKDIR; values expand ``$VAR`` against the env so far), ``CopyStep`` from the build
context (``ContextSource``; with ``files`` given, modes come from the executable bit alone) or
from another image (``ImageSource``: another spec, or a registry image pinned by digest, like
``COPY --from``), and ``RunStep``. ``dockerfile_parity_integration_test`` checks them against
BuildKit's Dockerfile frontend.

A registry base's config is resolved by the caller (the client's ``resolve_image_config``) and
passed in ``base_configs``: lowering never touches the network.
"""

from __future__ import annotations

from llbkit.image.errors import ImageSpecError, MissingBaseConfigError
from llbkit.image.expand import ExpansionError, expand
from llbkit.image.lower import BaseConfigs, Lowered, ResolvedBase, local_unique_id_for, lower
from llbkit.image.plan import plan, registry_bases
from llbkit.image.spec import (
    AddStep,
    Base,
    BindMount,
    CacheMount,
    ContextSource,
    CopyStep,
    EnvStep,
    ImageSource,
    ImageSpec,
    RegistryBase,
    RunMount,
    RunStep,
    ScratchBase,
    SecretMount,
    SpecBase,
    LayoutBase,
    SshMount,
    Step,
    TmpfsMount,
    UrlSource,
    UserStep,
    WorkdirStep,
    image_graph,
    image_sources,
    normalize_platforms,
    parse_chmod,
    parse_port,
    parse_signal,
    parse_user,
    validate_spec,
)

__all__ = [
    "ImageSpec",
    "Base",
    "ScratchBase",
    "RegistryBase",
    "SpecBase",
    "LayoutBase",
    "ContextSource",
    "ImageSource",
    "CopyStep",
    "EnvStep",
    "UserStep",
    "WorkdirStep",
    "image_sources",
    "RunStep",
    "Step",
    "CacheMount",
    "SecretMount",
    "TmpfsMount",
    "RunMount",
    "BindMount",
    "SshMount",
    "AddStep",
    "UrlSource",
    "image_graph",
    "validate_spec",
    "normalize_platforms",
    "parse_port",
    "parse_signal",
    "parse_user",
    "parse_chmod",
    "lower",
    "Lowered",
    "ResolvedBase",
    "BaseConfigs",
    "local_unique_id_for",
    "plan",
    "registry_bases",
    "ImageSpecError",
    "MissingBaseConfigError",
    "ExpansionError",
    "expand",
]
