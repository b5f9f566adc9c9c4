"""File ops: mkdir, mkfile, rm, symlink and copy as one op (Go's ``client/llb/fileop.go``).

Actions chain: ``mkdir("/app", 0o755).mkfile("/app/x", 0o644, b"...").copy(src, "/a", "/app/")``
applied with ``state.file(chain)`` is a single ``FileOp`` whose actions run in order, each on the
result of the previous one. Relative paths resolve against the working directory of the state the
chain is applied to (a copy's source path against its source state's directory).

Action inputs use BuildKit's numbering: ``0..len(inputs)-1`` are the op's inputs, ``len(inputs)+i``
is the result of action ``i`` and ``-1`` is scratch. Only the last action has an output (0).
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from llbkit._proto import ops_pb2 as pb
from llbkit.llb import caps as _caps
from llbkit.llb.constraints import Constraints, marshal_constraints, op_constraints
from llbkit.llb.errors import ConflictingOptionsError, InvalidArgumentError, InvalidPathError
from llbkit.llb.marshal import MarshalContext
from llbkit.llb.meta import go_path_clean, go_path_join
from llbkit.llb.state import Output, State, Vertex

__all__ = [
    "ChownOpt",
    "UserOpt",
    "FileAction",
    "FileOp",
    "mkdir",
    "mkfile",
    "rm",
    "symlink",
    "copy",
    "file",
]

OwnerLike = Union[None, str, int, Tuple[Union[int, str], Union[int, str]], "ChownOpt"]
TimeLike = Union[None, _dt.datetime, int, float]

# -- owners and times ------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserOpt:
    """A user or group: by numeric id, or by name looked up in the target's /etc/passwd|group."""

    id: int = 0
    name: str = ""


@dataclass(frozen=True)
class ChownOpt:
    user: Optional[UserOpt] = None
    group: Optional[UserOpt] = None


_INT_RE = re.compile(r"^[+-]?[0-9]+$")


def _user_opt(value: Union[int, str], *, op: str) -> UserOpt:
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{op}: owner must be a name or an id, got {value!r}")
    if isinstance(value, int):
        if not 0 <= value <= 0x7FFFFFFF:
            raise InvalidArgumentError(f"{op}: owner id {value} out of range 0..2147483647")
        return UserOpt(id=value)
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{op}: owner must be a name or an id, got {value!r}")
    # Go's parseUID: "root" and decimal int32 values are ids; anything else is a name.
    if value == "root":
        return UserOpt(id=0)
    if _INT_RE.match(value):
        n = int(value)
        if not -(2**31) <= n < 2**31:
            return UserOpt(name=value)
        if n < 0:
            raise InvalidArgumentError(f"{op}: owner id {value!r} is negative")
        return UserOpt(id=n)
    if not value:
        raise InvalidArgumentError(f"{op}: owner name is empty")
    return UserOpt(name=value)


def chown(owner: OwnerLike, *, op: str) -> Optional[ChownOpt]:
    """``"user[:group]"``, a uid, ``(uid, gid)`` or a :class:`ChownOpt`."""
    if owner is None or isinstance(owner, ChownOpt):
        return owner
    if isinstance(owner, tuple):
        if len(owner) != 2:
            raise InvalidArgumentError(f"{op}: owner tuple must be (user, group), got {owner!r}")
        return ChownOpt(_user_opt(owner[0], op=op), _user_opt(owner[1], op=op))
    if isinstance(owner, int) and not isinstance(owner, bool):
        return ChownOpt(_user_opt(owner, op=op), None)
    if isinstance(owner, str):
        if owner == "":
            raise InvalidArgumentError(f"{op}: owner is empty (use 'user', 'user:group', 'uid' or 'uid:gid')")
        user, sep, group = owner.partition(":")
        return ChownOpt(_user_opt(user, op=op), _user_opt(group, op=op) if sep else None)
    raise InvalidArgumentError(f"{op}: owner must be 'user[:group]', an id or (uid, gid), got {owner!r}")


def _user_pb(u: Optional[UserOpt], base: int, target: "pb.UserOpt") -> None:
    if u is None:
        return
    target.SetInParent()
    if u.name:
        target.byName.name = u.name
        target.byName.input = base
        target.byName.SetInParent()
    else:
        target.byID = u.id


def _chown_pb(c: Optional[ChownOpt], base: int, target: "pb.ChownOpt") -> None:
    if c is None:
        return
    target.SetInParent()
    _user_pb(c.user, base, target.user)
    _user_pb(c.group, base, target.group)


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def timestamp_ns(value: TimeLike, *, op: str) -> int:
    """Unix nanoseconds for a timezone-aware datetime or a number of Unix seconds; -1 for ``None``."""
    if value is None:
        return -1
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{op}: created_time must be a datetime or Unix seconds, got {value!r}")
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise InvalidArgumentError(f"{op}: created_time {value!r} has no timezone (use e.g. tzinfo=timezone.utc)")
        delta = value - _EPOCH
        return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    if isinstance(value, int):
        return value * 1_000_000_000
    if isinstance(value, float):
        return int(round(value * 1_000_000_000))
    raise InvalidArgumentError(f"{op}: created_time must be a datetime or Unix seconds, got {value!r}")


def _perm(mode: object, *, op: str, limit: int = 0o777) -> int:
    if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= limit:
        raise InvalidArgumentError(f"{op}: mode must be a permission mode 0..{oct(limit)}, got {mode!r}")
    return mode


def _path(p: object, *, op: str, what: str = "path") -> str:
    if not isinstance(p, str) or not p:
        raise InvalidPathError(f"{op}: {what} must be a non-empty path, got {p!r}")
    if "\0" in p:
        raise InvalidPathError(f"{op}: {what} {p!r} contains a NUL byte")
    return p


def normalize_path(parent: str, p: str, keep_slash: bool) -> str:
    """Go's ``normalizePath``: clean, resolve against ``parent``, keep a meaningful trailing ``/``
    or ``/.`` on copy destinations (they mean "into this directory")."""
    orig = p
    p = go_path_clean(p)
    if not p.startswith("/"):
        p = go_path_join("/", parent, p)
    if keep_slash:
        if orig.endswith("/") and not p.endswith("/"):
            p += "/"
        elif orig.endswith("/."):
            if p != "/":
                p += "/"
            p += "."
    return p


# -- actions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Mkdir:
    path: str
    mode: int
    make_parents: bool
    owner: Optional[ChownOpt]
    timestamp: int


@dataclass(frozen=True)
class _Mkfile:
    path: str
    mode: int
    data: bytes
    owner: Optional[ChownOpt]
    timestamp: int


@dataclass(frozen=True)
class _Rm:
    path: str
    allow_not_found: bool
    allow_wildcard: bool


@dataclass(frozen=True)
class _Symlink:
    oldpath: str
    newpath: str
    owner: Optional[ChownOpt]
    timestamp: int


@dataclass(frozen=True, eq=False)
class _CopySource:
    """Where a copy reads from: a state, or the result of an action chain bound to a state."""

    state: Optional[State] = None
    chain: Optional["FileAction"] = None


@dataclass(frozen=True)
class _Copy:
    source: _CopySource
    src: str
    dest: str
    owner: Optional[ChownOpt]
    mode: int  # -1: keep
    mode_str: str
    follow_symlinks: bool
    dir_contents_only: bool
    attempt_unpack: bool
    create_dest_path: bool
    allow_wildcard: bool
    allow_empty_wildcard: bool
    timestamp: int
    include_patterns: Tuple[str, ...]
    exclude_patterns: Tuple[str, ...]
    required_paths: Tuple[str, ...]
    always_replace_existing_dest_paths: bool


_Action = Union[_Mkdir, _Mkfile, _Rm, _Symlink, _Copy]


@dataclass(frozen=True, eq=False)
class FileAction:
    """One action and the actions before it. Immutable; chain with the methods below."""

    action: _Action
    prev: Optional["FileAction"] = None
    state: Optional[State] = None  # the state the chain is applied to, set by bind()

    def mkdir(self, path: str, mode: int = 0o755, **options: Any) -> "FileAction":
        return replace(mkdir(path, mode, **options), prev=self)

    def mkfile(self, path: str, mode: int, data: Union[bytes, str], **options: Any) -> "FileAction":
        return replace(mkfile(path, mode, data, **options), prev=self)

    def rm(self, path: str, **options: Any) -> "FileAction":
        return replace(rm(path, **options), prev=self)

    def symlink(self, oldpath: str, newpath: str, **options: Any) -> "FileAction":
        return replace(symlink(oldpath, newpath, **options), prev=self)

    def copy(self, source: Union[State, "_CopySource"], src: str, dest: str, **options: Any) -> "FileAction":
        return replace(copy(source, src, dest, **options), prev=self)

    def with_state(self, state: State) -> _CopySource:
        """Use this chain, applied to ``state``, as a copy source within the same file op."""
        return _CopySource(chain=self.bind(state))

    def chain(self) -> List["FileAction"]:
        """The actions from first to this one."""
        out: List[FileAction] = []
        fa: Optional[FileAction] = self
        while fa is not None:
            out.append(fa)
            fa = fa.prev
        out.reverse()
        return out

    def bind(self, state: State) -> "FileAction":
        """A copy of this chain with every action applied to ``state`` (Go's ``bind``)."""
        bound: Optional[FileAction] = None
        for fa in self.chain():
            bound = FileAction(fa.action, bound, state)
        assert bound is not None
        return bound


def mkdir(
    path: str,
    mode: int = 0o755,
    *,
    make_parents: bool = False,
    owner: OwnerLike = None,
    created_time: TimeLike = None,
) -> FileAction:
    """Create directory ``path`` (``make_parents``: like ``mkdir -p``)."""
    op = "file.mkdir"
    return FileAction(
        _Mkdir(
            _path(path, op=op),
            _perm(mode, op=op),
            bool(make_parents),
            chown(owner, op=op),
            timestamp_ns(created_time, op=op),
        )
    )


def mkfile(
    path: str,
    mode: int,
    data: Union[bytes, str],
    *,
    owner: OwnerLike = None,
    created_time: TimeLike = None,
) -> FileAction:
    """Create file ``path`` holding ``data`` (a ``str`` is written as UTF-8)."""
    op = "file.mkfile"
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidArgumentError(f"{op}: data must be bytes or str, got {type(data).__name__}")
    return FileAction(
        _Mkfile(
            _path(path, op=op),
            _perm(mode, op=op),
            bytes(data),
            chown(owner, op=op),
            timestamp_ns(created_time, op=op),
        )
    )


def rm(path: str, *, allow_not_found: bool = False, allow_wildcard: bool = False) -> FileAction:
    """Remove ``path`` (recursively)."""
    op = "file.rm"
    return FileAction(_Rm(_path(path, op=op), bool(allow_not_found), bool(allow_wildcard)))


def symlink(oldpath: str, newpath: str, *, owner: OwnerLike = None, created_time: TimeLike = None) -> FileAction:
    """Create a symlink at ``newpath`` (absolute) pointing to ``oldpath`` (stored as given)."""
    op = "file.symlink"
    _path(oldpath, op=op, what="link target (oldpath)")
    newpath = _path(newpath, op=op, what="link path (newpath)")
    if not newpath.startswith("/"):
        # Go writes newpath as given and buildkitd resolves it from "/", ignoring the state's
        # working directory: require an absolute path rather than surprise the caller.
        raise InvalidPathError(f"{op}: link path (newpath) {newpath!r} must be an absolute path")
    return FileAction(_Symlink(oldpath, newpath, chown(owner, op=op), timestamp_ns(created_time, op=op)))


_MODE_STR_RE = re.compile(r"^[ugoa]*[-+=][rwxXst]*([-+=][rwxXst]*)*(,[ugoa]*[-+=][rwxXst]*([-+=][rwxXst]*)*)*$")


def copy(
    source: Union[State, _CopySource],
    src: str,
    dest: str,
    *,
    owner: OwnerLike = None,
    mode: Union[int, str, None] = None,
    follow_symlinks: bool = False,
    dir_contents_only: bool = False,
    attempt_unpack: bool = False,
    create_dest_path: bool = False,
    allow_wildcard: bool = False,
    allow_empty_wildcard: bool = False,
    include_patterns: Sequence[str] = (),
    exclude_patterns: Sequence[str] = (),
    required_paths: Sequence[str] = (),
    created_time: TimeLike = None,
    always_replace_existing_dest_paths: bool = False,
) -> FileAction:
    """Copy ``src`` from ``source`` to ``dest`` on the target.

    ``mode`` is an int (``0o755``) or a chmod-style string (``"u+x,go-w"``); ``dir_contents_only``
    copies a directory's contents rather than the directory; ``dest`` ending in ``/`` means "into".
    ``required_paths`` only makes sense with ``include_patterns``.
    """
    op = "file.copy"
    if isinstance(source, State):
        csrc = _CopySource(state=source)
    elif isinstance(source, _CopySource):
        csrc = source
    else:
        raise InvalidArgumentError(
            f"{op}: copy source must be a State or action.with_state(state), got {type(source).__name__}"
        )
    src = _path(src, op=op, what="source path")
    dest = _path(dest, op=op, what="destination path")
    int_mode, mode_str = -1, ""
    if isinstance(mode, str):
        if not (_MODE_STR_RE.match(mode) or re.fullmatch(r"[0-7]{1,4}", mode)):
            raise InvalidArgumentError(f"{op}: invalid mode string {mode!r} (e.g. 'u+x', 'go-w', '0755')")
        mode_str, int_mode = mode, 0
    elif mode is not None:
        int_mode = _perm(mode, op=op, limit=0o7777)
    patterns = []
    for what, value in (
        ("include_patterns", include_patterns),
        ("exclude_patterns", exclude_patterns),
        ("required_paths", required_paths),
    ):
        if isinstance(value, str):
            raise InvalidArgumentError(f"{op}: {what} must be a list, not the string {value!r}")
        items = tuple(value)
        for item in items:
            _path(item, op=op, what=f"each of {what}")
        patterns.append(items)
    if patterns[2] and not patterns[0]:
        raise ConflictingOptionsError(f"{op}: required_paths {list(patterns[2])!r} need include_patterns")
    if allow_empty_wildcard and not allow_wildcard:
        raise ConflictingOptionsError(f"{op}: allow_empty_wildcard=True needs allow_wildcard=True (copy of {src!r})")
    return FileAction(
        _Copy(
            source=csrc,
            src=src,
            dest=dest,
            owner=chown(owner, op=op),
            mode=int_mode,
            mode_str=mode_str,
            follow_symlinks=bool(follow_symlinks),
            dir_contents_only=bool(dir_contents_only),
            attempt_unpack=bool(attempt_unpack),
            create_dest_path=bool(create_dest_path),
            allow_wildcard=bool(allow_wildcard),
            allow_empty_wildcard=bool(allow_empty_wildcard),
            timestamp=timestamp_ns(created_time, op=op),
            include_patterns=patterns[0],
            exclude_patterns=patterns[1],
            required_paths=patterns[2],
            always_replace_existing_dest_paths=bool(always_replace_existing_dest_paths),
        )
    )


# -- the op ----------------------------------------------------------------------------------------


def _all_outputs(root: FileAction) -> List[Output]:
    """Go's ``allOutputs``: every state output the chain reads, first seen first, without recursion."""
    seen = set()
    out: List[Output] = []

    def note(o: Optional[Output]) -> None:
        if o is not None and id(o) not in seen:
            seen.add(id(o))
            out.append(o)

    pending: List[FileAction] = [root]
    while pending:
        fa: Optional[FileAction] = pending.pop()
        while fa is not None:
            if fa.state is not None:
                note(fa.state.output)
            a = fa.action
            if isinstance(a, _Copy):
                if a.source.state is not None:
                    note(a.source.state.output)
                elif a.source.chain is not None:
                    # Go recurses into the source chain before continuing with prev.
                    if fa.prev is not None:
                        pending.append(fa.prev)
                    fa = a.source.chain
                    continue
            fa = fa.prev
    return out


@dataclass
class _ActionState:
    fa: FileAction
    base: int = -1
    input: int = -1
    input_rel: Optional["_ActionState"] = None
    input2: int = -1
    input2_rel: Optional["_ActionState"] = None
    target: int = 0


class FileOp(Vertex):
    """A file vertex: one chain of actions, output 0 is the last action's result."""

    __slots__ = ("action", "constraints", "_output", "_inputs")
    kind = "file"

    def __init__(self, action: FileAction, constraints: Constraints) -> None:
        self.action = action
        self.constraints = constraints
        self._output = Output(self, 0, None)
        self._inputs = _all_outputs(action)

    def output(self) -> Output:
        return self._output

    def inputs(self) -> Sequence[Output]:
        return self._inputs

    def _plan(self, ctx: MarshalContext) -> Tuple[List["pb.Input"], List[_ActionState]]:
        """Go's ``marshalState.add``, iteratively: inputs in first-use order and action targets."""
        inputs: List[pb.Input] = []
        keys: List[Tuple[str, int]] = []
        actions: List[_ActionState] = []
        visited: Dict[int, _ActionState] = {}

        def add_input(o: Output) -> int:
            inp = ctx.input(o)
            key = (inp.digest, inp.index)
            if key in keys:
                return keys.index(key)
            keys.append(key)
            inputs.append(inp)
            return len(inputs) - 1

        # Frames: (action, phase). Phase 0: visit prev; 1: base input, then the copy source chain;
        # 2: record the action. The order of add_input calls is the order of Op.inputs.
        stack: List[Tuple[FileAction, int]] = [(self.action, 0)]
        pending: Dict[int, _ActionState] = {}
        while stack:
            fa, phase = stack.pop()
            if id(fa) in visited:
                continue
            if phase == 0:
                stack.append((fa, 1))
                if fa.prev is not None and id(fa.prev) not in visited:
                    stack.append((fa.prev, 0))
            elif phase == 1:
                st = _ActionState(fa)
                pending[id(fa)] = st
                if fa.state is not None and fa.state.output is not None:
                    st.base = add_input(fa.state.output)
                if fa.prev is None:
                    st.input = st.base
                else:
                    st.input_rel = visited[id(fa.prev)]
                a = fa.action
                stack.append((fa, 2))
                if isinstance(a, _Copy):
                    if a.source.state is not None:
                        if a.source.state.output is not None:
                            st.input2 = add_input(a.source.state.output)
                    elif a.source.chain is not None and id(a.source.chain) not in visited:
                        stack.append((a.source.chain, 0))
            else:
                st = pending.pop(id(fa))
                a = fa.action
                if isinstance(a, _Copy) and a.source.chain is not None:
                    st.input2_rel = visited[id(a.source.chain)]
                st.target = len(actions)
                visited[id(fa)] = st
                actions.append(st)
        return inputs, actions

    def marshal_op(self, ctx: MarshalContext):
        c = self.constraints.with_caps(_caps.FILE_BASE, *_file_caps(self.action))
        op, md = marshal_constraints(ctx.base, c)
        op.ClearField("platform")  # file ops are not platform specific
        inputs, actions = self._plan(ctx)
        op.inputs.extend(inputs)
        fop = op.file
        fop.SetInParent()
        n = len(inputs)
        for i, st in enumerate(actions):
            pa = fop.actions.add()
            pa.input = n + st.input_rel.target if st.input_rel is not None else st.input
            pa.secondaryInput = n + st.input2_rel.target if st.input2_rel is not None else st.input2
            pa.output = 0 if i + 1 == len(actions) else -1
            parent = st.fa.state.get_dir() if st.fa.state is not None else ""
            _action_pb(st.fa.action, parent, st.base, pa)
        return op, md, c.source_locations


def _file_caps(action: FileAction) -> List[str]:
    # Go computes these in a loop that never runs (it iterates a fresh, empty marshal state), so Go
    # declares only file.base. Declaring them lets buildkitd reject what it cannot do, except
    # file.copy.modestring: buildkitd v0.32 never registered that cap and would refuse it.
    caps: List[str] = []
    pending = [action]
    seen = set()
    while pending:
        fa: Optional[FileAction] = pending.pop()
        while fa is not None and id(fa) not in seen:
            seen.add(id(fa))
            a = fa.action
            if isinstance(a, _Symlink):
                caps.append(_caps.FILE_SYMLINK_CREATE)
            elif isinstance(a, _Rm) and a.allow_wildcard:
                caps.append(_caps.FILE_RM_WILDCARD)
            elif isinstance(a, _Copy):
                if a.include_patterns or a.exclude_patterns:
                    caps.append(_caps.FILE_COPY_INCLUDE_EXCLUDE_PATTERNS)
                if a.required_paths:
                    caps.append(_caps.FILE_COPY_REQUIRED_PATHS)
                if a.always_replace_existing_dest_paths:
                    caps.append(_caps.FILE_COPY_ALWAYS_REPLACE_EXISTING_DEST_PATHS)
                if a.source.chain is not None:
                    pending.append(a.source.chain)
            fa = fa.prev
    return caps


def _copy_src_path(a: _Copy) -> str:
    p = go_path_clean(a.src)
    d = "/"
    if not p.startswith("/"):
        if a.source.state is not None:
            d = a.source.state.get_dir()
        elif a.source.chain is not None and a.source.chain.state is not None:
            d = a.source.chain.state.get_dir()
    return go_path_join(d, p)


def _action_pb(a: _Action, parent: str, base: int, pa: "pb.FileAction") -> None:
    if isinstance(a, _Mkdir):
        m = pa.mkdir
        m.SetInParent()
        m.path = normalize_path(parent, a.path, False)
        m.mode = a.mode
        m.makeParents = a.make_parents
        _chown_pb(a.owner, base, m.owner)
        m.timestamp = a.timestamp
    elif isinstance(a, _Mkfile):
        m = pa.mkfile
        m.SetInParent()
        m.path = normalize_path(parent, a.path, False)
        m.mode = a.mode
        m.data = a.data
        _chown_pb(a.owner, base, m.owner)
        m.timestamp = a.timestamp
    elif isinstance(a, _Rm):
        m = pa.rm
        m.SetInParent()
        m.path = normalize_path(parent, a.path, False)
        m.allowNotFound = a.allow_not_found
        m.allowWildcard = a.allow_wildcard
    elif isinstance(a, _Symlink):
        m = pa.symlink
        m.SetInParent()
        m.oldpath = a.oldpath
        m.newpath = a.newpath
        _chown_pb(a.owner, base, m.owner)
        m.timestamp = a.timestamp
    else:
        m = pa.copy
        m.SetInParent()
        m.src = _copy_src_path(a)
        m.dest = normalize_path(parent, a.dest, True)
        _chown_pb(a.owner, base, m.owner)
        m.include_patterns.extend(a.include_patterns)
        m.exclude_patterns.extend(a.exclude_patterns)
        m.required_paths.extend(a.required_paths)
        m.allowWildcard = a.allow_wildcard
        m.allowEmptyWildcard = a.allow_empty_wildcard
        m.followSymlink = a.follow_symlinks
        m.dirCopyContents = a.dir_contents_only
        m.attemptUnpackDockerCompatibility = a.attempt_unpack
        m.createDestPath = a.create_dest_path
        m.timestamp = a.timestamp
        m.alwaysReplaceExistingDestPaths = a.always_replace_existing_dest_paths
        m.mode = a.mode
        m.modeStr = a.mode_str


def file(
    state: State,
    action: FileAction,
    *,
    custom_name: Optional[str] = None,
    ignore_cache: bool = False,
    constraints: Optional[Constraints] = None,
) -> State:
    """Apply ``action`` (and the actions chained before it) to ``state`` as one file op."""
    if not isinstance(action, FileAction):
        raise InvalidArgumentError(
            f"file: expected a file action (mkdir, mkfile, rm, symlink, copy), got {type(action).__name__}"
        )
    c = op_constraints("file", constraints, custom_name=custom_name, ignore_cache=ignore_cache)
    fop = FileOp(action.bind(state), c)
    return state.with_output(fop.output())
