"""Lowering: an :class:`~llbkit.image.spec.ImageSpec` and one platform -> an LLB state and the
image config to return with it.

Docker's rules, applied without a daemon:

- a registry base starts from ``llb.image(ref, platform=...)``; its config (Env, WorkingDir,
  User, Shell, Entrypoint, Cmd...) is the one the caller resolved and passes in ``base_configs``
  (lowering never touches the network). Its env, working directory and user apply to runs, and
  the image config is merged on top of it (:meth:`ImageConfig.to_oci`);
- a :class:`~llbkit.image.spec.SpecBase` is lowered recursively for the same platform and
  composed directly: its state is the starting filesystem and its full OCI config the base config;
- the spec's ``env``, ``user`` and ``workdir`` act as ENV, USER and WORKDIR before the steps;
  then the steps in order: ENV/USER/WORKDIR steps (values expand ``$VAR`` against the env so
  far, the base's included; WORKDIR is created, 0755, owned by the user in effect), copies from
  the build context (one ``local`` source per context name, including exactly the paths
  copied; modes normalized from ``ContextSource.files``) or from another image's filesystem
  (another spec lowered for the same platform, or a registry image pinned by digest), adds
  (archives unpacked, URLs downloaded), runs with the env, cwd, user and mounts in effect
  (bind, cache, secret, ssh, tmpfs); destinations and mount targets expand ``$VAR``; the last
  env, user and workdir set are the config's;
- a base's ONBUILD triggers are cleared (not run);
- one history entry per step, no wall-clock times (the exporter fills ``created`` from
  SOURCE_DATE_EPOCH).

The same spec, platform, base configs and context digest always give the same definition bytes.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

from llbkit import llb
from llbkit.jsonutil import parse_json_object
from llbkit.oci.imageconfig import DEFAULT_PATH, HistoryEntry, ImageConfig
from llbkit.image.errors import ImageSpecError, MissingBaseConfigError
from llbkit.image.expand import ExpansionError, expand
from llbkit.image.platform_sources import for_platform
from llbkit.image.spec import (
    AddStep,
    BindMount,
    CacheMount,
    ContextSource,
    CopyStep,
    EnvStep,
    ImageSource,
    UserStep,
    WorkdirStep,
    ImageSpec,
    RegistryBase,
    RunStep,
    ScratchBase,
    SecretMount,
    SpecBase,
    LayoutBase,
    SshMount,
    TmpfsMount,
    UrlSource,
    normalize_platforms,
    parse_chmod,
    parse_port,
    parse_user,
    validate_spec,
)
from llbkit.reference import parse_reference

__all__ = ["Lowered", "ResolvedBase", "BaseConfigs", "lower", "local_unique_id_for"]

DEFAULT_SHELL = ("/bin/sh", "-c")
HISTORY_COMMENT = "llbkit"


@dataclass(frozen=True)
class ResolvedBase:
    """What the caller resolved for a registry base on one platform: its OCI config (parsed JSON
    or raw bytes) and, optionally, the digest the reference resolved to. With a digest, the image
    source is pinned to it (``name:tag@digest``), so the definition changes when the tag moves."""

    config: Union[Mapping[str, Any], bytes, str]
    digest: Optional[str] = None


ConfigLike = Union[ResolvedBase, Mapping[str, Any], bytes, str]
#: Keys are ``(ref, platform)`` or just ``ref`` (as written in the spec, or normalized).
BaseConfigs = Mapping[Union[str, Tuple[str, str]], ConfigLike]


@dataclass(frozen=True, eq=False)
class Lowered:
    """One image for one platform: the LLB ``state`` and its ``definition``, the ``config`` the
    spec adds, and ``base_config`` (the OCI config JSON it is added to; ``None`` for scratch).
    :meth:`oci_config` is the image's full OCI config."""

    spec: ImageSpec
    platform: str
    state: llb.State
    definition: llb.Definition
    config: ImageConfig
    base_config: Optional[Mapping[str, Any]] = None
    local_unique_id: Optional[str] = None

    def oci_config(self) -> Dict[str, Any]:
        return self.config.to_oci(self.platform, self.base_config)

    def oci_config_bytes(self) -> bytes:
        return self.config.to_json_bytes(self.platform, self.base_config)

    def base_config_bytes(self) -> Optional[bytes]:
        """The base's config as canonical JSON (``None`` for scratch): it tells the exporter which
        layers are the registry base's (its ``rootfs.diff_ids``; for a target base, those of the
        registry image under it), which are kept as they are."""
        if self.base_config is None:
            return None
        return json.dumps(self.base_config, sort_keys=True, separators=(",", ":")).encode()


def local_unique_id_for(context_digest: Optional[str]) -> Optional[str]:
    """The ``local.unique`` value for a build context with this content digest."""
    return f"llbkit-context:{context_digest}" if context_digest else None


def _parse_config(value: Any, ref: str, platform: str) -> Tuple[Dict[str, Any], Optional[str]]:
    digest = None
    if isinstance(value, ResolvedBase):
        digest, value = value.digest, value.config
    if isinstance(value, (bytes, str)):
        value = parse_json_object(value, f"base image {ref} ({platform}): config", ImageSpecError)
    if not isinstance(value, Mapping):
        raise ImageSpecError(f"base image {ref} ({platform}): config must be a JSON object, got {type(value).__name__}")
    return dict(value), digest


def _find_base_config(
    spec: ImageSpec, base: RegistryBase, platform: str, base_configs: Optional[BaseConfigs]
) -> Tuple[Dict[str, Any], Optional[str]]:
    norm = base.normalized
    configs = base_configs or {}
    for key in ((norm, platform), (base.ref, platform), norm, base.ref):
        if key in configs:
            return _parse_config(configs[key], base.ref, platform)
    raise MissingBaseConfigError(
        f"{spec.name}: no config for base image {base.ref!r} on {platform}: resolve it (e.g. with the "
        f"client's resolve_image_config) and pass it in base_configs[({norm!r}, {platform!r})]"
    )


def _find_layout_config(
    spec: ImageSpec, base: LayoutBase, platform: str, base_configs: Optional[BaseConfigs]
) -> Tuple[Dict[str, Any], str]:
    value = (base_configs or {}).get((base.key, platform))
    if value is None:
        raise MissingBaseConfigError(
            f"{spec.name}: no config for base {base.key} on {platform}: read it from the layout "
            f"(llbkit.builder.oci_layouts.layout_base_configs) and pass it in "
            f"base_configs[({base.key!r}, {platform!r})]")
    config, digest = _parse_config(value, base.key, platform)
    if not digest:
        raise ImageSpecError(f"{spec.name}: base {base.key} on {platform}: its manifest digest is needed "
                             "(pass ResolvedBase(config, digest))")
    return config, digest


def _pinned_ref(norm: str, digest: Optional[str]) -> str:
    if not digest:
        return norm
    r = parse_reference(norm, op="base")
    if r.digest and r.digest != digest:
        raise ImageSpecError(
            f"base image {norm}: the resolved digest {digest} differs from the pinned one {r.digest}"
        )
    return f"{r.name}{':' + r.tag if r.tag else ''}@{digest}"


def _without_onbuild(cfg_json: Dict[str, Any]) -> Dict[str, Any]:
    """A base's config without its ONBUILD triggers: Docker clears them in the child (BuildKit's
    frontend runs them first; llbkit does not run them, and says so in the base field's help)."""
    cfg = cfg_json.get("config")
    if isinstance(cfg, Mapping) and "OnBuild" in cfg:
        cfg_json = dict(cfg_json, config={k: v for k, v in cfg.items() if k != "OnBuild"})
    return cfg_json


def _apply_config(state: llb.State, cfg_json: Mapping[str, Any]) -> llb.State:
    """Env, working directory and user of an OCI config, as Docker applies a FROM image's."""
    cfg = cfg_json.get("config") or {}
    for entry in cfg.get("Env") or ():
        key, _, value = str(entry).partition("=")
        if key:
            state = state.add_env(key, value)
    if cfg.get("WorkingDir"):
        state = state.dir(cfg["WorkingDir"])
    if cfg.get("User"):
        state = state.user(cfg["User"])
    return state


def _shell(cfg_json: Optional[Mapping[str, Any]]) -> Tuple[str, ...]:
    shell = ((cfg_json or {}).get("config") or {}).get("Shell")
    return tuple(shell) if shell else DEFAULT_SHELL


def _dest(dest: str, workdir: str) -> str:
    """Docker's COPY destination: relative to the working directory; a trailing ``/`` (or a final
    ``.``) means into that directory."""
    into = dest.endswith("/") or dest == "." or dest.endswith("/.")
    path = dest if dest.startswith("/") else posixpath.join(workdir or "/", dest)
    path = posixpath.normpath(path)
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    if into and path != "/":
        path += "/"
    return path


class _Mounts:
    """Lowers a run's mounts; the states of mounted images are lowered once per image."""

    def __init__(self, spec: ImageSpec, platform: str, base_configs: Optional[BaseConfigs],
                 source_date_epoch: Optional[int], contexts: Mapping[str, llb.State]) -> None:
        self.spec, self.platform, self.base_configs = spec, platform, base_configs
        self.source_date_epoch, self.contexts = source_date_epoch, contexts
        self._images: Dict[int, llb.State] = {}

    def source(self, src: Any, path: str) -> Tuple[llb.State, str]:
        """The state and selector of a bind or cache mount source."""
        if isinstance(src, ContextSource):
            return self.contexts[src.context_name], "/" + posixpath.normpath(src.path)
        if isinstance(src, RegistryBase):
            state = llb.image(src.normalized, platform=self.platform,
                              custom_name=f"[{self.spec.name}] load mounted image {src.ref}")
        else:
            assert isinstance(src, SpecBase)
            key = id(src.spec)
            if key not in self._images:
                self._images[key] = llb.State(
                    _lower_state(src.spec, self.platform, self.base_configs, self.source_date_epoch)[0].output
                ).platform(self.platform)
            state = self._images[key]
        norm = posixpath.normpath(path or "/")
        return state, "" if norm == "/" else norm

    def mount(self, m: Any) -> Optional[llb.Mount]:
        if isinstance(m, CacheMount):
            if m.source is not None:
                state, selector = self.source(m.source, m.path)
                return llb.cache(m.target, m.id, sharing=m.sharing, source=state, selector=selector)
            if m.sets_owner:
                # As Docker's frontend: a new cache starts as a directory with this owner and mode.
                mode = parse_chmod(m.mode) if m.mode is not None else 0o755
                seed = llb.scratch().file(
                    llb.mkdir("/cache", mode, owner=(m.uid or 0, m.gid or 0)),
                    custom_name="[internal] settings cache mount permissions")
                return llb.cache(m.target, m.id, sharing=m.sharing, source=seed, selector="/cache")
            return llb.cache(m.target, m.id, sharing=m.sharing)
        if isinstance(m, SecretMount):
            if not m.as_file:
                return None  # only an environment variable: see secret_envs
            return llb.secret(m.path, m.id, uid=m.uid, gid=m.gid, mode=m.mode, optional=not m.required)
        if isinstance(m, TmpfsMount):
            return llb.tmpfs(m.target, size=m.size)
        if isinstance(m, BindMount):
            state, selector = self.source(m.source, m.path)
            # Docker: read-only by default; a read-write bind mount's changes are dropped.
            return llb.bind(m.target, state, selector=selector, readonly=not m.readwrite, no_output=m.readwrite)
        if isinstance(m, SshMount):
            return llb.ssh(m.target, id=m.id, uid=m.uid, gid=m.gid, mode=m.mode, optional=not m.required)
        raise ImageSpecError(f"unsupported mount {m!r}")  # pragma: no cover - validated before


def _secret_envs(step: RunStep) -> List[Any]:
    return [llb.secret_env(m.env, m.id, optional=not m.required)
            for m in step.all_mounts if isinstance(m, SecretMount) and m.env is not None]


def _copy_history(step: CopyStep) -> str:
    opts = ""
    src = step.source
    if isinstance(src, ImageSource):
        opts += f" --from={src.image if isinstance(src.image, str) else src.image.name}"
    if step.chown is not None:
        opts += f" --chown={step.chown}"
    if step.chmod is not None:
        mode = parse_chmod(step.chmod)
        opts += f" --chmod={mode:04o}" if isinstance(mode, int) else f" --chmod={mode}"
    what = f"{src.context_name}:{src.path}" if isinstance(src, ContextSource) else src.path
    return f"COPY{opts} {what} {step.dest}"


# Modes of copied context files whose executable bit the frontend knows (ContextSource.files):
# the files' modes where the context is staged are ignored (Pants' store leaks 0555 into large
# files), so the result depends on content and the executable bit only. Symbolic modes leave the
# directories that a copy creates above its destination at 0755, where an int mode would give
# them that mode (fsutil's copy: MkdirAll with CopyInfo.Mode or 0755).
_REGULAR = "u=rw,go=r"  # 0644
_EXECUTABLE = "u=rwx,go=rx"  # 0755: executables and directories


def _pattern(path: str) -> str:
    """An exact path as a pattern of fsutil's matcher (its special characters escaped)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", path)


def _normalized_copy(local: llb.State, src: str, dest: str, files: Tuple[Tuple[str, bool], ...],
                     opts: Dict[str, Any]) -> llb.FileAction:
    """Copy ``src`` to ``dest`` with modes from ``files`` alone: non-executable files first
    (0644), then everything else (0755), which also gives every directory 0755 (a directory
    the first copy made or touched gets its mode back from the second)."""
    if len(files) == 1 and files[0][0] == "":
        return llb.copy(local, src, dest, mode=_EXECUTABLE if files[0][1] else _REGULAR, **opts)
    regular = sorted(_pattern(posixpath.normpath(p)) for p, executable in files if not executable)
    rest = dict(opts, mode=_EXECUTABLE, exclude_patterns=regular)
    if not regular:
        return llb.copy(local, src, dest, **rest)
    return llb.copy(local, src, dest, mode=_REGULAR, include_patterns=regular, **opts).copy(local, src, dest, **rest)


def _copy_action(
    spec: ImageSpec,
    step: CopyStep,
    dest: str,
    contexts: Dict[str, llb.State],
    platform: str,
    base_configs: Optional[BaseConfigs],
    source_date_epoch: Optional[int],
) -> llb.FileAction:
    """The file action of one copy, with the Dockerfile frontend's copy options (follow the
    source path's own symlink, copy a directory's contents, create the destination path)."""
    src = step.source
    mode = parse_chmod(step.chmod) if step.chmod is not None else None
    common: Dict[str, Any] = dict(follow_symlinks=True, dir_contents_only=True, create_dest_path=True,
                                  created_time=source_date_epoch)
    if isinstance(src, ImageSource):
        if isinstance(src.image, str):
            image = llb.image(src.image, platform=platform, custom_name=f"[{spec.name}] FROM {src.image}")
        else:
            image, _, _ = _lower_state(src.image, platform, base_configs, source_date_epoch)
        # Files copied from an image keep their owners unless chown says otherwise (COPY --from).
        return llb.copy(image, src.path, dest, owner=step.chown, mode=mode, **common)
    local = contexts[src.context_name]
    path = "/" + posixpath.normpath(src.path)
    owner = step.chown if step.chown is not None else (0, 0)
    if src.files is None or isinstance(mode, int):
        return llb.copy(local, path, dest, owner=owner, mode=mode, **common)
    if mode is None:
        return _normalized_copy(local, path, dest, src.files, dict(common, owner=owner))
    # A symbolic mode applies to each file's mode: normalize the modes first, in a staging
    # filesystem, then copy from it with the symbolic mode, as Docker copies from its context.
    staged_path = "/" + posixpath.basename(path) if src.is_file else "/"
    staged = llb.scratch().platform(platform).file(
        _normalized_copy(local, path, staged_path, src.files, common),
        custom_name=f"[{spec.name}] stage {src.context_name}:{src.path}")
    return llb.copy(staged, staged_path, dest, owner=owner, mode=mode, **common)


def _mount_history(m: Any) -> str:
    if isinstance(m, CacheMount):
        opts = f"type=cache,target={m.target}"
        opts += "".join(f",{k}={v}" for k, v in (("uid", m.uid), ("gid", m.gid)) if v is not None)
        if m.mode is not None:
            opts += f",mode={parse_chmod(m.mode):o}"
        return opts + (",from=..." if m.source is not None else "")
    if isinstance(m, SecretMount):
        return f"type=secret,id={m.id}" + (f",env={m.env}" if m.env else "")
    if isinstance(m, BindMount):
        return f"type=bind,target={m.target}" + (",rw" if m.readwrite else "")
    if isinstance(m, SshMount):
        return f"type=ssh,id={m.id}"
    return f"type=tmpfs,target={m.target}"


def _run_history(step: RunStep) -> str:
    cmd = step.command if isinstance(step.command, str) else json.dumps(list(step.command))
    opts = "".join(f" --mount={_mount_history(m)}" for m in step.all_mounts if not isinstance(m, TmpfsMount))
    if step.network != "default":
        opts += f" --network={step.network}"
    if step.security != "sandbox":
        opts += f" --security={step.security}"
    return f"RUN{opts} {cmd}"


def _add_history(step: AddStep) -> str:
    opts = f" --chown={step.chown}" if step.chown is not None else ""
    if step.chmod is not None:
        opts += f" --chmod={parse_chmod(step.chmod):04o}"
    src = step.source
    if isinstance(src, UrlSource):
        return f"ADD{opts} --checksum={src.checksum} {src.url} {step.dest}"
    return f"ADD{opts} {src.context_name}:{src.path} {step.dest}"


def _context_sources(spec: ImageSpec) -> List[ContextSource]:
    """The build-context sources of the copies, adds and mounts of ``spec``'s steps, in order."""
    out: List[ContextSource] = []
    for step in spec.steps:
        if isinstance(step, (CopyStep, AddStep)) and isinstance(step.source, ContextSource):
            out.append(step.source)
        elif isinstance(step, RunStep):
            out.extend(m.source for m in step.all_mounts if isinstance(getattr(m, "source", None), ContextSource))
    return out


def _locals(spec: ImageSpec) -> Dict[str, llb.State]:
    """One local source per context name, including exactly the paths the copies name."""
    paths: Dict[str, List[str]] = {}
    for source in _context_sources(spec):
        norm = posixpath.normpath(source.path)
        lst = paths.setdefault(source.context_name, [])
        if norm not in lst:
            lst.append(norm)
    return {
        name: llb.local(
            name,
            include_patterns=sorted(ps),
            shared_key_hint=name,
            custom_name=f"[{spec.name}] load build context {name}",
        )
        for name, ps in sorted(paths.items())
    }


def _lower_add(state: llb.State, step: AddStep, dest: str, contexts: Mapping[str, llb.State], prefix: str,
               source_date_epoch: Optional[int]) -> llb.State:
    """Docker's ADD: a context archive is unpacked into ``dest`` (the step's destination, expanded
    and resolved against the working directory; anything else is copied); a URL is downloaded,
    verified against its checksum, to ``dest`` (into it when ``dest`` ends in ``/``)."""
    owner = step.chown if step.chown is not None else (0, 0)
    mode = parse_chmod(step.chmod) if step.chmod is not None else None
    created_by = _add_history(step)
    src = step.source
    if isinstance(src, UrlSource):
        name = posixpath.basename(urlsplit(src.url).path.rstrip("/")) or "__unnamed__"
        source = llb.http(src.url, checksum=src.checksum, filename=name, custom_name=prefix + created_by)
        action = llb.copy(source, "/" + name, dest, owner=owner, mode=mode, create_dest_path=True,
                          created_time=source_date_epoch)
    else:
        # Without chown, an archive's entries keep their owners (Docker); the build context's own
        # files arrive as 0:0 either way.
        action = llb.copy(contexts[src.context_name], "/" + posixpath.normpath(src.path), dest,
                          owner=step.chown, mode=mode, follow_symlinks=True, dir_contents_only=True, attempt_unpack=True,
                          create_dest_path=True, created_time=source_date_epoch)
    return state.file(action, custom_name=prefix + created_by)


def _lower_state(
    spec: ImageSpec,
    platform: str,
    base_configs: Optional[BaseConfigs],
    source_date_epoch: Optional[int],
) -> Tuple[llb.State, ImageConfig, Optional[Dict[str, Any]]]:
    if spec.platforms and platform not in normalize_platforms(spec.platforms, spec_name=spec.name):
        raise ImageSpecError(
            f"{spec.name}: field 'platforms': {platform} is not one of {list(spec.platforms)}: add it, or "
            f"build the image (and the images built on it) only for the listed platforms"
        )
    base = spec.base
    base_json: Optional[Dict[str, Any]] = None
    if isinstance(base, ScratchBase):
        state = llb.scratch().platform(platform)
    elif isinstance(base, RegistryBase):
        base_json, digest = _find_base_config(spec, base, platform, base_configs)
        base_json = _without_onbuild(base_json)
        ref = _pinned_ref(base.normalized, digest)
        state = llb.image(ref, platform=platform, custom_name=f"[{spec.name}] FROM {base.ref}")
        state = _apply_config(state, base_json)
    elif isinstance(base, LayoutBase):
        base_json, digest = _find_layout_config(spec, base, platform, base_configs)
        base_json = _without_onbuild(base_json)
        # As Go's llb.OCILayout("docker.io/library/NAME@DIGEST", llb.OCIStore("", NAME), ...):
        # no session id, so the op (and the cache key) is the same on every run.
        state = llb.oci_layout(f"{base.name}@{digest}", store_id=base.name, platform=platform,
                               custom_name=f"[{spec.name}] FROM {base.key}")
        state = _apply_config(state, base_json)
    else:
        assert isinstance(base, SpecBase)
        parent_state, parent_cfg, parent_base = _lower_state(base.spec, platform, base_configs, source_date_epoch)
        base_json = _without_onbuild(parent_cfg.to_oci(platform, parent_base))
        state = _apply_config(llb.State(parent_state.output).platform(platform), base_json)

    history: List[HistoryEntry] = []
    prefix = f"[{spec.name}] "

    def note(created_by: str, empty: bool) -> None:
        history.append(HistoryEntry(created_by=created_by, comment=HISTORY_COMMENT, empty_layer=empty))

    # The top-level env, user and workdir are the simple form of the ordered steps: they act
    # as ENV, USER and WORKDIR before the steps (see ImageSpec).
    steps: List[Tuple[str, Any]] = []
    if spec.env:
        steps.append(("env", EnvStep(spec.env)))
    if spec.user is not None:
        steps.append(("user", UserStep(spec.user)))
    if spec.workdir is not None:
        steps.append(("workdir", WorkdirStep(spec.workdir)))
    steps.extend((f"steps[{i}]", st) for i, st in enumerate(spec.steps))

    contexts = _locals(spec)
    mounts = _Mounts(spec, platform, base_configs, source_date_epoch, contexts)
    shell = _shell(base_json)
    scratch_path = isinstance(base, ScratchBase)
    env_set: Dict[str, str] = {}  # what the steps set, in order: the config's Env on top of the base's
    user_set: Optional[str] = None
    workdir_set = False

    def env_now() -> Dict[str, str]:
        env = dict(e.partition("=")[::2] for e in state.env())
        if scratch_path:
            env.setdefault("PATH", DEFAULT_PATH)  # Docker's FROM scratch has the default PATH
        return env

    def expanded(where: str, value: str) -> str:
        try:
            return expand(value, env_now())
        except ExpansionError as e:
            raise ImageSpecError.for_field(
                spec.name, where, value, f"cannot expand variables ({e}) in",
                "write $NAME, ${NAME}, ${NAME:-default} or ${NAME:+value}; escape a literal $ as \\$") from None

    def expanded_chmod(where: str, step: Any) -> Any:
        # COPY/ADD --chmod=$MODE: BuildKit's Dockerfile frontend expands it against the
        # environment so far (ARG and ENV alike), then reads the mode.
        if not (isinstance(step.chmod, str) and "$" in step.chmod):
            return step
        mode = expanded(f"{where}.chmod", step.chmod)
        try:
            parse_chmod(mode)
        except ValueError as e:
            raise ImageSpecError.for_field(spec.name, f"{where}.chmod", step.chmod,
                                           f"invalid mode ({e}), expanded to {mode!r}:",
                                           "set the variable to an octal mode such as '0644' or a symbolic one such as 'u+x'") from None
        return dataclasses.replace(step, chmod=mode)

    for where, step in steps:
        if isinstance(step, EnvStep):
            values = [(k, expanded(f"{where}.env" if where.startswith("steps") else where, v)) for k, v in step.env]
            for key, value in values:
                state = state.add_env(key, value)
                env_set.pop(key, None)
                env_set[key] = value
            note("ENV " + " ".join(f"{k}={v}" for k, v in values), True)
        elif isinstance(step, UserStep):
            user = expanded(f"{where}.user" if where.startswith("steps") else where, step.user)
            try:
                parse_user(user)
            except ValueError as e:
                raise ImageSpecError.for_field(spec.name, where if where == "user" else f"{where}.user", step.user,
                                               f"invalid user ({e}), expanded to {user!r}:",
                                               "use 'name', 'uid', 'name:group' or 'uid:gid'") from None
            state = state.user(user)
            user_set = user
            note(f"USER {user}", True)
        elif isinstance(step, WorkdirStep):
            path = expanded(where if where == "workdir" else f"{where}.path", step.path)
            state = state.dir(path)
            workdir = state.get_dir()
            workdir_set = True
            if workdir != "/":
                # Docker's WORKDIR: mkdir -p, 0755, owned by the user in effect (the base's included).
                mk = llb.mkdir(workdir, 0o755, make_parents=True, owner=state.get_user() or None,
                               created_time=source_date_epoch)
                state = state.file(mk, custom_name=f"{prefix}WORKDIR {workdir}")
                note(f"WORKDIR {workdir}", False)
            else:
                note("WORKDIR /", True)
        elif isinstance(step, AddStep):
            dest = _dest(expanded(f"{where}.dest", step.dest), state.get_dir())
            step = expanded_chmod(where, step)
            state = _lower_add(state, step, dest, contexts, prefix, source_date_epoch)
            note(_add_history(step), False)
        elif isinstance(step, CopyStep):
            dest = _dest(expanded(f"{where}.dest", step.dest), state.get_dir())
            if step.chown is not None and "$" in step.chown:  # COPY --chown=$APP_UID expands too
                chown = expanded(f"{where}.chown", step.chown)
                try:
                    parse_user(chown)
                except ValueError as e:
                    raise ImageSpecError.for_field(spec.name, f"{where}.chown", step.chown,
                                                   f"invalid owner ({e}), expanded to {chown!r}:",
                                                   "use 'user', 'uid', 'user:group' or 'uid:gid'") from None
                step = dataclasses.replace(step, chown=chown)
            step = expanded_chmod(where, step)
            action = _copy_action(spec, step, dest, contexts, platform, base_configs, source_date_epoch)
            created_by = _copy_history(step)
            state = state.file(action, custom_name=prefix + created_by)
            note(created_by, False)
        else:
            assert isinstance(step, RunStep)
            argv = list(shell) + [step.command] if isinstance(step.command, str) else list(step.command)
            created_by = _run_history(step)
            lowered_mounts = []
            for j, m in enumerate(step.all_mounts):
                target = getattr(m, "target", None)
                if isinstance(target, str) and "$" in target:
                    # As Docker expands --mount options: against the environment so far.
                    m = dataclasses.replace(m, target=expanded(f"{where}.mounts[{j}].target", target))
                    if not m.target.startswith("/"):
                        raise ImageSpecError.for_field(
                            spec.name, f"{where}.mounts[{j}].target", target,
                            f"a mount target must be an absolute path; expanded to {m.target!r}:",
                            "set the variable to an absolute path, or start the target with '/'")
                lowered_mounts.append(mounts.mount(m))
            state = state.run(
                argv,
                mounts=[m for m in lowered_mounts if m is not None],
                secret_env=_secret_envs(step),
                network=None if step.network == "default" else step.network,
                security=None if step.security == "sandbox" else step.security,
                custom_name=prefix + created_by,
            ).root()
            note(created_by, False)

    ports: List[str] = []
    for p in spec.exposed_ports:
        for q in parse_port(p):
            if q not in ports:
                ports.append(q)
    for label, present, text in (
        ("LABEL", spec.labels, " ".join(f"{k}={json.dumps(v)}" for k, v in spec.labels)),
        ("EXPOSE", ports, " ".join(ports)),
        ("VOLUME", spec.volumes, json.dumps(list(spec.volumes))),
        ("STOPSIGNAL", spec.stop_signal, spec.stop_signal or ""),
        ("ENTRYPOINT", spec.entrypoint is not None, json.dumps(list(spec.entrypoint or ()))),
        ("CMD", spec.cmd is not None, json.dumps(list(spec.cmd or ()))),
    ):
        if present:
            note(f"{label} {text}", True)

    config = ImageConfig(
        env=env_set,
        entrypoint=tuple(spec.entrypoint) if spec.entrypoint is not None else None,
        cmd=tuple(spec.cmd) if spec.cmd is not None else None,
        workdir=state.get_dir() if workdir_set else None,
        user=user_set,
        labels=dict(spec.labels),
        exposed_ports=tuple(ports),
        volumes=tuple(spec.volumes),
        stop_signal=spec.stop_signal,
        history=tuple(history),
    )
    return state, config, base_json


def lower(
    spec: ImageSpec,
    platform: Union[str, llb.Platform],
    *,
    base_configs: Optional[BaseConfigs] = None,
    context_digest: Optional[str] = None,
    source_date_epoch: Optional[int] = None,
) -> Lowered:
    """Lower ``spec`` for ``platform``.

    ``base_configs`` holds the resolved config of every registry base in the chain, keyed by
    ``(ref, platform)`` or ``ref`` (see :class:`ResolvedBase` to pin the digest too);
    ``context_digest`` (the build context's content digest) becomes the local sources'
    ``local.unique`` id; ``source_date_epoch`` (seconds), when given, is the mtime of copied files
    and created directories. Raises :class:`~llbkit.image.errors.ImageSpecError` for an invalid
    spec or a missing base config.
    """
    validate_spec(spec)
    plat = normalize_platforms([platform if isinstance(platform, str) else llb.format_platform(platform)],
                               spec_name=spec.name)[0]
    if source_date_epoch is not None and (
        not isinstance(source_date_epoch, int) or isinstance(source_date_epoch, bool) or source_date_epoch < 0
    ):
        raise ImageSpecError(f"source_date_epoch must be a non-negative int (seconds), got {source_date_epoch!r}")
    try:
        # A per-platform copy source (a PEX built for each platform) becomes this platform's.
        state, config, base_json = _lower_state(for_platform(spec, plat), plat, base_configs, source_date_epoch)
        unique = local_unique_id_for(context_digest)
        definition = state.marshal(plat, local_unique_id=unique)
    except llb.LLBError as e:
        raise ImageSpecError(f"{spec.name}: failed to lower for {plat}: {e}") from e
    return Lowered(spec, plat, state, definition, config, base_json, unique)
