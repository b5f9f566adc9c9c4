"""States, outputs and the vertex contract shared by every op kind.

A :class:`State` is an immutable pair: the output of some op (``None`` for scratch) and the
:class:`~llbkit.llb.meta.StateMeta` values a later ``run`` will consume. Every method returns a new
state; nothing is mutated, so a state can be reused in any number of graphs.

Every op kind implements :class:`Vertex`: ``inputs()`` lists the outputs it reads (in the order
they become ``pb.Op.inputs``), and ``marshal_op(ctx)`` builds its ``pb.Op`` once every input has
been marshaled, as in Go's ``Vertex.Marshal``. The op kinds live in their own modules
(``source``, ``exec``, ``fileop``, ``merge``, ``diff``); ``marshal`` walks the graph.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Tuple, Union

from llbkit.llb.constraints import Constraints, OpMetadata, SourceLocation
from llbkit.llb.errors import InvalidArgumentError
from llbkit.llb.meta import EnvLike, NetMode, SecurityMode, StateMeta, as_net_mode, as_security_mode
from llbkit.jsonutil import parse_json_object
from llbkit.platforms import Platform, PlatformLike, as_platform

if TYPE_CHECKING:  # pragma: no cover
    from llbkit._proto import ops_pb2 as pb
    from llbkit.llb.exec import ExecState
    from llbkit.llb.fileop import FileAction
    from llbkit.llb.marshal import Definition, MarshalContext

__all__ = ["Vertex", "Output", "State", "new_state"]


class Vertex:
    """One op of the graph. Subclasses are immutable after construction.

    Identity matters: the marshaler visits each vertex object once, then deduplicates by digest,
    so two separately built but identical ops still appear once in a definition.
    """

    __slots__ = ()

    #: The op kind as the wire names it (``source``, ``exec``, ``file``, ``merge``, ``diff``).
    kind: str = ""

    def inputs(self) -> Sequence["Output"]:
        raise NotImplementedError

    def marshal_op(self, ctx: "MarshalContext") -> Tuple["pb.Op", OpMetadata, Tuple[SourceLocation, ...]]:
        """The op (inputs resolved through ``ctx``), its metadata and its source locations."""
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class Output:
    """Output ``index`` of ``vertex``; ``platform`` is the platform a state built on it adopts."""

    vertex: Vertex
    index: int = 0
    platform: Optional[Platform] = None


def new_state(output: Optional[Output]) -> "State":
    """A fresh state on ``output``: working directory ``/``, platform taken from the output."""
    meta = StateMeta()
    if output is not None and output.platform is not None:
        meta = replace(meta, platform=output.platform)
    return State(output, meta)


@dataclass(frozen=True, eq=False)
class State:
    """An immutable filesystem state plus the values (env, dir, user...) later runs use.

    Build states with the source functions (``scratch``, ``image``, ``local``, ``git``, ``http``,
    ``oci_layout``) and derive new ones with ``run``, ``file``, ``merge`` and ``diff``.
    """

    output: Optional[Output] = None
    meta: StateMeta = StateMeta()

    # -- graph ----------------------------------------------------------------------------------

    def with_output(self, output: Optional[Output]) -> "State":
        """Same values, new filesystem: what ``run``/``file``/``merge``/``diff`` return."""
        meta = self.meta
        if output is not None and output.platform is not None:
            meta = replace(meta, platform=output.platform)
        return State(output, meta)

    def _with_meta(self, meta: StateMeta) -> "State":
        # Always a plain State: derived values must not keep an ExecState's mount accessors.
        return State(self.output, meta)

    @property
    def is_scratch(self) -> bool:
        return self.output is None

    # -- env --------------------------------------------------------------------------------------

    def add_env(self, key: str, value: str) -> "State":
        """Set one environment variable for later runs (replacing an earlier value)."""
        return self._with_meta(self.meta.add_env(key, value))

    def with_env(self, env: EnvLike) -> "State":
        """Replace the whole environment (a mapping, ``["K=V", ...]`` or ``[(K, V), ...]``)."""
        return self._with_meta(self.meta.with_env(env))

    def del_env(self, key: str) -> "State":
        return self._with_meta(self.meta.del_env(key))

    def get_env(self, key: str) -> Optional[str]:
        return self.meta.get_env(key)

    def env(self) -> Tuple[str, ...]:
        """The environment as ``KEY=value`` strings, in the order runs will see it."""
        return self.meta.env_list()

    # -- working directory, user, hostname ---------------------------------------------------------

    def dir(self, path: str) -> "State":
        """Set the working directory; a relative ``path`` is joined onto the current one."""
        return self._with_meta(self.meta.with_dir(path))

    def get_dir(self) -> str:
        return self.meta.dir

    def user(self, user: str) -> "State":
        """The user later runs execute as (``name``, ``uid``, ``name:group``, ``uid:gid``)."""
        return self._with_meta(self.meta.with_user(user))

    def get_user(self) -> str:
        return self.meta.user

    def hostname(self, hostname: str) -> "State":
        return self._with_meta(self.meta.with_hostname(hostname))

    def get_hostname(self) -> str:
        return self.meta.hostname

    def add_extra_host(self, host: str, ip: str) -> "State":
        """Add an ``/etc/hosts`` entry for later runs."""
        return self._with_meta(self.meta.add_extra_host(host, ip))

    def add_ulimit(self, name: str, soft: int, hard: int) -> "State":
        return self._with_meta(self.meta.add_ulimit(name, soft, hard))

    def with_cgroup_parent(self, cgroup_parent: str) -> "State":
        return self._with_meta(replace(self.meta, cgroup_parent=str(cgroup_parent)))

    # -- platform, network, security -----------------------------------------------------------

    def platform(self, platform: PlatformLike) -> "State":
        """The platform later runs (and images pulled for them) target."""
        return self._with_meta(replace(self.meta, platform=as_platform(platform, op="platform")))

    def get_platform(self) -> Optional[Platform]:
        return self.meta.platform

    def network(self, mode: Union[NetMode, str]) -> "State":
        """Network mode for later runs: ``sandbox`` (default), ``host`` or ``none``."""
        return self._with_meta(replace(self.meta, network=as_net_mode(mode, op="network")))

    def get_network(self) -> NetMode:
        return self.meta.network

    def security(self, mode: Union[SecurityMode, str]) -> "State":
        """Security mode for later runs: ``sandbox`` (default) or ``insecure``."""
        return self._with_meta(replace(self.meta, security=as_security_mode(mode, op="security")))

    def get_security(self) -> SecurityMode:
        return self.meta.security

    def with_image_config(self, config: Union[bytes, str, Mapping[str, Any]]) -> "State":
        """Adopt an OCI image config's env, working directory and platform (Go's ``WithImageConfig``)."""
        if isinstance(config, (bytes, str)):
            config = parse_json_object(config, "with_image_config: image config", InvalidArgumentError)
        if not isinstance(config, Mapping):
            raise InvalidArgumentError(f"with_image_config: image config must be a JSON object, got {config!r}")
        s: State = self
        cfg = config.get("config") or {}
        for entry in cfg.get("Env") or ():
            key, _, value = str(entry).partition("=")
            if key:
                s = s.add_env(key, value)
        s = s.dir(cfg.get("WorkingDir") or "")
        os_name, arch = config.get("os"), config.get("architecture")
        if os_name and arch:
            p = Platform(
                os=os_name,
                architecture=arch,
                variant=config.get("variant") or "",
                os_version=config.get("os.version") or "",
                os_features=tuple(config.get("os.features") or ()),
            )
            s = s.platform(p)
        return s

    # -- ops ------------------------------------------------------------------------------------

    def run(self, args: Union[str, Sequence[str]], **options: Any) -> "ExecState":
        """Run a command on this state; see :func:`llbkit.llb.exec.run` for every option."""
        from llbkit.llb.exec import run as _run

        return _run(self, args, **options)

    def file(self, action: "FileAction", **options: Any) -> "State":
        """Apply a chain of file actions; see :func:`llbkit.llb.fileop.file`."""
        from llbkit.llb.fileop import file as _file

        return _file(self, action, **options)

    def marshal(
        self,
        platform: Optional[PlatformLike] = None,
        *,
        constraints: Optional[Constraints] = None,
        local_unique_id: Optional[str] = None,
    ) -> "Definition":
        """Serialize this state and everything it depends on; see :func:`llbkit.llb.marshal.marshal`."""
        from llbkit.llb.marshal import marshal as _marshal

        return _marshal(self, platform=platform, constraints=constraints, local_unique_id=local_unique_id)
