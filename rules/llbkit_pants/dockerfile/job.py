"""A `dockerfile_image` as a solve job: one frontend call per platform, hermetic by content.

`DockerfileJobRequest(address)` -> `DockerfileJob`. Per platform, BuildKit runs its own
Dockerfile frontend (`dockerfile.v0`; `gateway.v0` with a frontend image pinned by digest for
`frontend_image` or a `# syntax=` directive) with the Dockerfile and the build context as local
dirs (`dockerfile`, `context`) and these options, exactly as `buildctl build --frontend
dockerfile.v0 --opt ...` passes them:

* `filename`, `target` (`target_stage`), `platform`, `build-arg:NAME` for each build argument
  (`[dockerfile].build_args`, then `extra_build_args`; a bare `NAME` from the environment Pants
  runs in), `force-network-mode` (`build_network`);
* `context:NAME=docker-image://REF@sha256:...` for every registry image a `FROM` or
  `COPY --from` names by tag: the digest comes from the one base-resolution path
  (`util_rules.bases`, the base-image lockfile first), so the frontend never follows a tag;
  NAME is the reference as the frontend looks it up (Docker's familiar form, `:latest` dropped);
* for a `FROM` whose build argument holds a `container_image` address: the argument is set to
  a name of that target (`llbkit-target/PATH/NAME`), and `context:` that name `=input:NAME`
  with the target's LLB for this platform as a frontend input and its image config as
  `input-metadata:NAME` (what buildx sends), so the stage is composed from the target's own
  build, with no registry;
* for a `FROM` whose build argument holds a `dockerfile_image` address: the argument is set the
  same way, and `context:` that name `=oci-layout://STORE@sha256:...`, the target's packaged OCI
  layout (served from the client as the session content store `oci:STORE`, see
  `llbkit.builder.oci_layouts`) at this platform's manifest digest: its layers are kept as they are.

Everything here is content (the definitions pin every base): the job's files are the cache key.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Tuple

from pants.engine.addresses import Address, Addresses, UnparsedAddressInputs
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import Digest
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import InvalidFieldException, WrappedTarget, WrappedTargetRequest

from llbkit_pants.dockerfile.context import DockerfileContext, DockerfileContextRequest
from llbkit_pants.dockerfile.layout_base import DockerfileLayoutBase, DockerfileLayoutBaseRequest
from llbkit_pants.dockerfile.model import Dockerfile, DockerfileProblem, StageBase
from llbkit_pants.dockerfile.parser import DockerfileError, ParsedDockerfile, ParsedDockerfileRequest, problem_error
from llbkit_pants.dockerfile.subsystem import DockerfileSubsystem
from llbkit_pants.dockerfile.target_types import (
    DockerfileImageBuildArgsField,
    DockerfileImageBuildNetworkField,
    DockerfileImageFrontendField,
    DockerfileImageSecretsField,
    DockerfileImageSourceField,
    DockerfileImageTargetStageField,
)
from llbkit_pants.subsystems.buildkit import BuildKitSubsystem
from llbkit_pants.target_types import ContainerImageBaseField, ContainerImagePlatformsField
from llbkit_pants.util_rules.bases import ImageBases, ImageBasesRequest, UnlockedBaseError
from llbkit_pants.util_rules.lowering import LoweredImage, LoweredImageRequest, declared_platforms

# The library is imported where it is used: loading the plugin must not load it (see register.py).
if TYPE_CHECKING:  # pragma: no cover
    from llbkit.builder.job import FrontendCall

TARGET_PREFIX = "llbkit-target"


def parse_build_args(entries: Sequence[str], env: Mapping[str, Optional[str]]) -> Dict[str, Optional[str]]:
    """`NAME=VALUE` / `NAME` (from `env`; `None` when unset there) entries, later ones winning."""
    out: Dict[str, Optional[str]] = {}
    for entry in entries:
        name, eq, value = entry.partition("=")
        out[name.strip()] = value if eq else env.get(name.strip())
    return out


def env_names(entries: Sequence[str]) -> Tuple[str, ...]:
    return tuple(sorted({e.strip() for e in entries if "=" not in e}))


def context_name(ref: str) -> str:
    """The key the Dockerfile frontend looks a `FROM` image up by in its named contexts: Docker's
    familiar form of the reference (`busybox:1.36`, `127.0.0.1:5050/llbkit/busybox`), with a
    `:latest` tag dropped (BuildKit's `dockerui.NamedContext`)."""
    from llbkit.reference import parse_reference

    r = parse_reference(ref, op="FROM")
    name = r.repository
    if r.registry == "docker.io":
        if name.startswith("library/") and name.count("/") == 1:
            name = name[len("library/"):]
    elif r.registry:
        name = f"{r.registry}/{name}"
    out = name + (f":{r.tag}" if r.tag else "") + (f"@{r.digest}" if r.digest else "")
    return out[: -len(":latest")] if out.endswith(":latest") else out


def oci_layout_context(store: str, digest: str) -> str:
    """A named context read from the client's OCI layout store `store` (the session content
    store `oci:STORE`), pinned to one platform's manifest `digest`: BuildKit's Dockerfile
    frontend (`dockerui.NamedContext`, `oci-layout`) takes the reference's name as the store id."""
    return f"oci-layout://{store}@{digest}"


def target_image_name(address: Address) -> str:
    """A valid image name standing for an image target inside the frontend (never pulled)."""
    parts = [p for p in re.split(r"[/:]+", f"{address.spec_path}/{address.target_name}".lower()) if p]
    clean = [re.sub(r"^[^a-z0-9]+|[^a-z0-9]+$", "", re.sub(r"[^a-z0-9._-]+", "-", p)) or "x" for p in parts]
    return "/".join([TARGET_PREFIX, *clean])


@dataclass(frozen=True)
class DockerfilePlanRequest:
    address: Address


@dataclass(frozen=True)
class DockerfilePlan:
    """What the Dockerfile and the target say before anything is resolved: the build arguments
    (values), the stage bases per platform, the registry images named by reference
    (`(normalized, as written)`), the frontend image, and `refs`: every registry reference to
    pin (normalized), which both the build and the base-image lockfile use."""

    address: Address
    parsed: ParsedDockerfile
    platforms: Tuple[str, ...]
    build_args: Tuple[Tuple[str, str], ...]
    stage: Optional[str]
    stage_bases: Tuple[Tuple[str, Tuple[StageBase, ...]], ...]
    written: Tuple[Tuple[str, str], ...]
    frontend: Optional[str]  # normalized
    frontend_written: Optional[str]  # as the field, the directive or BUILDKIT_SYNTAX names it
    refs: Tuple[str, ...]


@dataclass(frozen=True)
class DockerfileJobRequest:
    address: Address


@dataclass(frozen=True)
class DockerfileJob:
    address: Address
    platforms: Tuple[str, ...]
    calls: Tuple[Tuple[str, FrontendCall], ...]  # (platform, call), in index order
    secrets: Tuple[Tuple[str, bool], ...]
    context: DockerfileContext
    # The build contexts of the container_image targets composed in: their LLB reads the local
    # dir `context` too, so their files join the Dockerfile's context.
    target_contexts: Tuple[Digest, ...]
    events: Tuple[str, ...]
    # The OCI layouts those targets' LLB reads (a container_image on a dockerfile_image base).
    layouts: Tuple[Tuple[str, Digest, str], ...] = ()


def _enabled_entitlements(address: Address, path: str, df: Dockerfile, network: Optional[str],
                          buildkit: BuildKitSubsystem) -> Tuple[str, ...]:
    """What the Dockerfile's RUNs need of the daemon (`RUN --network=host`,
    `--security=insecure`), each of which must be enabled in `[buildkit].entitlements`: refused
    here, naming the line, before anything is solved (as a `container_image`'s runs are)."""
    from llbkit.image.entitlements import parse_entitlements

    enabled = parse_entitlements(buildkit.entitlements)  # checked with the options
    fix = 'enable it in pants.toml: [buildkit] entitlements = ["{}"]'
    if network == "host" and "network.host" not in enabled:
        raise InvalidFieldException(
            f"Invalid field `{DockerfileImageBuildNetworkField.alias}` in dockerfile_image target {address}: "
            f"'host' needs the network.host entitlement, which is not enabled: {fix.format('network.host')}.")
    for entitlement, line in df.entitlement_lines():
        if entitlement not in enabled:
            flag = "--network=host" if entitlement == "network.host" else "--security=insecure"
            raise DockerfileError(
                f"dockerfile_image {address}: {path}:{line}: `RUN {flag}` needs the {entitlement} entitlement, "
                f"which is not enabled: {fix.format(entitlement)}.")
    return tuple(e for e, _ in df.entitlement_lines())


def _syntax_image(text: str, build_args: Mapping[str, str]) -> Optional[str]:
    """The custom frontend image a `BUILDKIT_SYNTAX` build argument or a `# syntax=` directive
    names (found as BuildKit finds it, see `llbkit.builder.frontends`)."""
    from llbkit.builder.frontends import detect_syntax

    if build_args.get("BUILDKIT_SYNTAX"):
        return build_args["BUILDKIT_SYNTAX"].strip().split(" ", 1)[0]
    syntax = detect_syntax(text.encode())
    return syntax.image if syntax else None


def _image_refs(df: Dockerfile, bases: Sequence[StageBase]) -> List[Tuple[str, int]]:
    refs = [(b.value, b.stage.line) for b in bases if b.kind == "image"]
    return refs + list(df.copy_from_images())


@rule(desc="Read a dockerfile_image's build arguments and FROM images")
async def dockerfile_plan(request: DockerfilePlanRequest, buildkit: BuildKitSubsystem,
                          subsystem: DockerfileSubsystem) -> DockerfilePlan:
    from llbkit.image import ImageSpecError, RegistryBase

    address = request.address
    parsed = await Get(ParsedDockerfile, ParsedDockerfileRequest(address))
    df = parsed.dockerfile
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(address, description_of_origin=str(address)))
    tgt = wrapped.target
    platforms = declared_platforms(address, tgt[ContainerImagePlatformsField].value or (), buildkit)
    target_args = tuple(tgt[DockerfileImageBuildArgsField].value or ())
    global_args = tuple(subsystem.build_args)
    env = await Get(EnvironmentVars, EnvironmentVarsRequest(env_names(target_args + global_args)))
    declared = set(df.declared_args())
    args = {k: v for k, v in parse_build_args(global_args, env).items() if k in declared or k.startswith("BUILDKIT_")}
    args.update(parse_build_args(target_args, env))
    stage = tgt[DockerfileImageTargetStageField].value
    try:
        df.check_build_args(parse_build_args(target_args, {}).keys(), "in `extra_build_args`")
        df.check_target_stage(stage)
    except DockerfileProblem as e:
        raise problem_error(address, e) from None
    unset = sorted(k for k, v in args.items() if v is None)
    if unset:
        raise DockerfileError(
            f"dockerfile_image {address}: build argument {unset[0]!r} takes its value from the environment, "
            f"where it is not set: set it in the environment Pants runs in, or give a value (`{unset[0]}=VALUE`).")
    values: Dict[str, str] = {k: v for k, v in args.items() if v is not None}

    # Each platform's stage bases; registry references by tag are pinned, image targets composed.
    try:
        per_platform = {p: df.stage_bases(values, p, p) for p in platforms}
    except DockerfileProblem as e:
        raise problem_error(address, e) from None
    written: Dict[str, str] = {}  # normalized -> as written (the context name is the written one's)
    for p in platforms:
        for ref, line in _image_refs(df, per_platform[p]):
            try:
                written.setdefault(RegistryBase(ref).normalized, ref)
            except ImageSpecError as e:
                raise DockerfileError(f"dockerfile_image {address}: {parsed.path}:{line}: {e.problem} "
                                      f"{ref!r}: {e.fix}") from None
    frontend_ref = tgt[DockerfileImageFrontendField].value or _syntax_image(parsed.text, values)
    frontend_norm = None
    if frontend_ref:
        try:
            frontend_norm = RegistryBase(frontend_ref).normalized
        except ImageSpecError as e:
            raise DockerfileError(f"dockerfile_image {address}: frontend image {frontend_ref!r}: {e.problem}: "
                                  f"{e.fix}") from None
    refs = tuple(sorted(set(written) | ({frontend_norm} if frontend_norm else set())))
    return DockerfilePlan(address, parsed, platforms, tuple(sorted(values.items())), stage,
                          tuple((p, per_platform[p]) for p in platforms), tuple(sorted(written.items())),
                          frontend_norm, frontend_ref, refs)


@rule(desc="Plan a dockerfile_image's frontend solve")
async def dockerfile_job(request: DockerfileJobRequest, buildkit: BuildKitSubsystem) -> DockerfileJob:
    from llbkit.builder.frontends import dockerfile_frontend, gateway_frontend, named_input
    from llbkit.errors import LlbkitError

    address = request.address
    plan = await Get(DockerfilePlan, DockerfilePlanRequest(address))
    ctx = await Get(DockerfileContext, DockerfileContextRequest(address))
    platforms, refs, stage, frontend_norm = plan.platforms, plan.refs, plan.stage, plan.frontend
    df = ctx.parsed.dockerfile
    values = dict(plan.build_args)
    written = dict(plan.written)
    per_platform = dict(plan.stage_bases)
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(address, description_of_origin=str(address)))
    tgt = wrapped.target
    try:
        bases = await Get(ImageBases, ImageBasesRequest(address, refs, platforms)) if refs else ImageBases((), ())
    except UnlockedBaseError as e:  # its message names the target as a container_image
        raise UnlockedBaseError(str(e).replace("container_image ", "dockerfile_image ", 1)) from None
    pinned = {ref: base.digest for ref, _, base in bases.bases if base.digest}

    def pin(ref: str) -> str:
        digest = pinned.get(ref)
        return ref if "@" in ref or not digest else f"{ref}@{digest}"

    target_bases = sorted({b.value for bs in per_platform.values() for b in bs if b.kind == "target"})
    target_addresses = await Get(Addresses, UnparsedAddressInputs(
        target_bases, owning_address=address,
        description_of_origin=f"the FROM images (build arguments) of {ctx.parsed.path} ({address})"))
    targets = await MultiGet(Get(WrappedTarget, WrappedTargetRequest(a, description_of_origin=str(address)))
                             for a in target_addresses)
    # A container_image is composed from its LLB; a dockerfile_image (whose LLB exists only inside
    # the frontend that built it) is read from its packaged OCI layout, served from the client.
    composed: List[Tuple[str, Address]] = []
    layered: List[Tuple[str, Address]] = []
    for value, a, t in zip(target_bases, target_addresses, targets):
        if t.target.has_field(DockerfileImageSourceField):
            # Checked before the base is packaged: a mismatch must not cost a build.
            theirs = declared_platforms(a, t.target[ContainerImagePlatformsField].value or (), buildkit)
            missing = [p for p in platforms if p not in theirs]
            if missing:
                raise DockerfileError(
                    f"dockerfile_image {address} is built for {', '.join(platforms)}, but its FROM target {a} "
                    f"is built for {', '.join(theirs)}: add {', '.join(missing)} to that target's `platforms`.")
            layered.append((value, a))
        elif t.target.has_field(ContainerImageBaseField):
            composed.append((value, a))
        else:
            raise DockerfileError(
                f"dockerfile_image {address}: a FROM names {value!r}, a `{t.target.alias}` target: a FROM can "
                "name a `container_image` or `dockerfile_image` target, or a registry image.")
    # The build argument that holds each target address is set to the target's image name.
    arg_of: Dict[str, str] = {}
    for value in target_bases:
        holders = [n for n, _ in df.meta_args() if values.get(n, dict(df.meta_args()).get(n)) == value]
        if not holders:
            raise DockerfileError(
                f"dockerfile_image {address}: {ctx.parsed.path}: a FROM names the target {value!r} directly; "
                f"hold the address in a build argument (`ARG BASE={value}` before the first FROM, then "
                "`FROM $BASE`), as Pants' docker_image does.")
        arg_of[value] = holders[0]
    lowered = await MultiGet(Get(LoweredImage, LoweredImageRequest(a)) for _, a in composed)
    layout_bases = await MultiGet(Get(DockerfileLayoutBase, DockerfileLayoutBaseRequest(a, platforms))
                                  for _, a in layered)

    secrets = dict(df.secret_mounts())
    for sid in (tgt[DockerfileImageSecretsField].value or {}):
        secrets[sid] = True
    network = tgt[DockerfileImageBuildNetworkField].value
    needs = _enabled_entitlements(address, ctx.parsed.path, df, network, buildkit)
    calls: List[Tuple[str, FrontendCall]] = []
    for p in platforms:
        attrs: Dict[str, str] = {"platform": p}
        filename = ctx.parsed.path.rsplit("/", 1)[-1]
        if filename != "Dockerfile":  # the frontend's default, which buildctl leaves unsaid too
            attrs["filename"] = filename
        if stage:
            attrs["target"] = stage
        if network and network != "default":
            attrs["force-network-mode"] = network
        for k, v in values.items():
            attrs[f"build-arg:{k}"] = v
        for norm, ref in written.items():
            if "@" not in ref:
                attrs[f"context:{context_name(ref)}"] = f"docker-image://{pin(norm)}"
        inputs: Dict[str, bytes] = {}
        for (value, a), lw_image in zip(composed, lowered):
            lw = next((x for x in lw_image.lowered if x.platform == p), None)
            if lw is None:
                raise DockerfileError(
                    f"dockerfile_image {address} is built for {p}, but its FROM target {a} is built for "
                    f"{', '.join(lw_image.platforms)}: add {p} to that target's `platforms`.")
            name = target_image_name(a)
            attrs[f"build-arg:{arg_of[value]}"] = name
            opts, (_, definition) = named_input(name, lw.definition.to_bytes(), lw.oci_config_bytes())
            attrs.update(opts)
            inputs[name] = definition
        for (value, a), layout in zip(layered, layout_bases):
            name = target_image_name(a)
            attrs[f"build-arg:{arg_of[value]}"] = name
            attrs[f"context:{name}"] = oci_layout_context(layout.name, dict((q, d) for q, d, _ in layout.bases)[p])
        pins = {plan.frontend_written: pinned[frontend_norm]} if frontend_norm in pinned else {}
        try:
            if tgt[DockerfileImageFrontendField].value:
                call = gateway_frontend(tgt[DockerfileImageFrontendField].value, tuple(attrs.items()),
                                        tuple(inputs.items()), pins=pins, where="the `frontend_image` field")
            else:
                call = dockerfile_frontend(ctx.parsed.text.encode(), tuple(attrs.items()), tuple(inputs.items()),
                                           pins=pins, filename=ctx.parsed.path)
        except LlbkitError as e:
            raise DockerfileError(f"dockerfile_image {address}: {e}") from None
        # The frontend's runs are in no definition the build process can read: it asks the daemon
        # for what the Dockerfile's own RUN flags need.
        calls.append((p, dataclasses.replace(call, entitlements=needs)))
    events = bases.events + tuple(e for lw in lowered for e in lw.events)
    target_contexts = tuple(lw.image.context for lw in lowered if lw.image.context_digest is not None)
    layouts = tuple(sorted({*(x for lw in lowered for x in lw.layouts),
                            *((b.name, b.tar, b.path) for b in layout_bases)}, key=lambda x: x[0]))
    return DockerfileJob(address, platforms, tuple(calls), tuple(sorted(secrets.items())), ctx, target_contexts,
                         events, layouts)


def rules():
    return collect_rules()
