"""llbkit's LLB compiler: build BuildKit LLB graphs in Python, with canonical bytes and digests.

Mirrors Go's ``github.com/moby/buildkit/client/llb`` in snake_case, with immutable states::

    from llbkit import llb

    base = llb.image("busybox", platform="linux/amd64")
    app = base.dir("/app").add_env("GREETING", "hi").run(
        ["/bin/sh", "-c", "echo $GREETING > out.txt"],
        mounts=[llb.cache("/root/.cache", "pip")],
    ).root()
    out = llb.scratch().file(llb.copy(app, "/app/out.txt", "/out.txt"))
    definition = out.marshal(platform="linux/amd64")
    definition.to_bytes()      # a pb.Definition, deterministic
    llb.dump(definition)       # == buildctl debug dump-llb

Every op is serialized in protobuf's deterministic mode and named ``sha256:<hex>`` of those bytes;
the same state gives the same bytes on every run and every supported Python. Bad input raises a
subclass of :class:`llbkit.errors.LLBError` naming the op and the value.
"""

from __future__ import annotations

from llbkit.llb import caps
from llbkit.llb.constraints import (
    Constraints,
    LinuxResources,
    OpMetadata,
    Position,
    ProgressGroup,
    Range,
    SourceLocation,
    SourceMap,
)
from llbkit.llb.diff import diff
from llbkit.llb.dump import dump, dump_ops, to_dot
from llbkit.llb.errors import (
    ConflictingOptionsError,
    InvalidArgumentError,
    InvalidDefinitionError,
    InvalidMountError,
    InvalidPathError,
    InvalidPlatformError,
    InvalidReferenceError,
    LLBError,
)
from llbkit.llb.exec import (
    CacheSharing,
    CDIDevice,
    ContentCache,
    ExecState,
    Mount,
    MountType,
    ProxyEnv,
    SecretEnv,
    bind,
    cache,
    mount,
    run,
    secret,
    secret_env,
    ssh,
    tmpfs,
)
from llbkit.llb.fileop import ChownOpt, FileAction, UserOpt, copy, file, mkdir, mkfile, rm, symlink
from llbkit.llb.marshal import Definition, OpInput, OpView, load, marshal
from llbkit.llb.merge import merge
from llbkit.llb.meta import NetMode, SecurityMode
from llbkit.platforms import Platform, default_platform, format_platform, parse_platform
from llbkit.reference import normalize_image_reference
from llbkit.llb.source import ResolveMode, git, http, image, local, oci_layout, scratch
from llbkit.llb.state import State

__all__ = [
    # states and sources
    "State",
    "ExecState",
    "scratch",
    "image",
    "local",
    "git",
    "http",
    "oci_layout",
    "ResolveMode",
    # ops
    "run",
    "file",
    "merge",
    "diff",
    # run options
    "Mount",
    "MountType",
    "CacheSharing",
    "ContentCache",
    "bind",
    "cache",
    "tmpfs",
    "secret",
    "ssh",
    "mount",
    "SecretEnv",
    "secret_env",
    "ProxyEnv",
    "CDIDevice",
    "NetMode",
    "SecurityMode",
    # file actions
    "FileAction",
    "mkdir",
    "mkfile",
    "rm",
    "symlink",
    "copy",
    "ChownOpt",
    "UserOpt",
    # constraints and metadata
    "Constraints",
    "OpMetadata",
    "ProgressGroup",
    "LinuxResources",
    "SourceMap",
    "SourceLocation",
    "Range",
    "Position",
    "caps",
    # platforms and references
    "Platform",
    "parse_platform",
    "format_platform",
    "default_platform",
    "normalize_image_reference",
    # definitions
    "Definition",
    "OpView",
    "OpInput",
    "marshal",
    "load",
    "dump",
    "dump_ops",
    "to_dot",
    # errors
    "LLBError",
    "InvalidArgumentError",
    "InvalidPathError",
    "InvalidPlatformError",
    "InvalidReferenceError",
    "InvalidMountError",
    "ConflictingOptionsError",
    "InvalidDefinitionError",
]
