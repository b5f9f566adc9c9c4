"""The Python interpreter of an image's platform, as a pex complete platform.

`ImageCompletePlatformRequest(address, platform, base, file)` -> `ImageCompletePlatform`: what
a PEX copied into the image's variant for `platform` is resolved for (pex's
`--complete-platform`). Either the `file` target the image's `complete_platforms` field names
for that platform, or the interpreter of the image itself: the registry base at the root of its
chain, pinned by digest (from the base lockfile where it holds it, see `util_rules.bases`), is
inspected on a worker of that platform (native or emulated) by the build process, solving
`llbkit.builder.interpreter.inspection_spec`. That solve is a cacheable Pants process whose
inputs are the definition (base digest and platform), pex's own bytes and llbkit's code; so it
runs once per base digest and platform, on any machine sharing the cache.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Optional, Tuple

from pants.backend.python.util_rules.pex import CompletePlatforms
from pants.backend.python.util_rules.pex_cli import PexCli
from pants.core.util_rules.external_tool import DownloadedExternalTool, ExternalToolRequest
from pants.engine.addresses import Address, Addresses, UnparsedAddressInputs
from pants.engine.fs import AddPrefix, CreateDigest, Digest, DigestContents, DigestSubset, FileContent, MergeDigests, PathGlobs
from pants.engine.platform import Platform
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import Get, collect_rules, rule
from pants.util.logging import LogLevel

from llbkit_pants.util_rules.bases import ImageBases, ImageBasesRequest
from llbkit_pants.util_rules.machine import MachineChannel, MachineChannelRequest
from llbkit_pants.util_rules.process_errors import process_failure
from llbkit_pants.util_rules.solver import SolverCode

logger = logging.getLogger(__name__)

JOB_DIR = "job"
CONTEXT_DIR = "context"
IMAGE_OUT = "out/image.tar"
RECORD_OUT = "out/image.json"
PLATFORMS_DIR = "__llbkit_complete_platforms"


# What `platform.machine()` says on each platform (Linux), to check an inspection ran there.
_MACHINES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64", "linux/s390x": "s390x",
             "linux/ppc64le": "ppc64le", "linux/riscv64": "riscv64"}


class InterpreterInspectionError(Exception):
    """The interpreter of an image's base could not be inspected (the message says which and why)."""


@dataclass(frozen=True)
class ImageCompletePlatformRequest:
    address: Address  # the container_image whose copy needs it (for errors)
    platform: str
    base: Optional[str]  # the registry base at the root of the image's chain (None: scratch)
    file: Optional[str] = None  # a `file` target's address, from the `complete_platforms` field


@dataclass(frozen=True)
class ImageCompletePlatform:
    """The complete platform for one platform, as Pants' pex rules take it, and where it came
    from (`origin`, JSON for image.json: `{"source": "inspected", "base": ..., ...}` or
    `{"source": "file", "target": ...}`)."""

    platform: str
    complete_platforms: CompletePlatforms
    origin: str


def _file_name(platform: str) -> str:
    return f"{PLATFORMS_DIR}/{platform.replace('/', '_')}.json"


@dataclass(frozen=True)
class InspectedInterpreterRequest:
    address: Address
    base: str
    platform: str


@dataclass(frozen=True)
class InspectedInterpreter:
    json: bytes  # the complete platform
    origin: str


@rule(desc="Inspect a base image's Python interpreter", level=LogLevel.DEBUG)
async def inspect_interpreter(request: InspectedInterpreterRequest, pex_cli: PexCli) -> InspectedInterpreter:
    from llbkit.builder.interpreter import InspectionError, inspection_spec, read_complete_platform
    from llbkit.builder.job import ExportOptions, SolveJob
    from llbkit.errors import LlbkitError
    from llbkit.image import plan, registry_bases

    base, platform = request.base, request.platform
    tool = await Get(DownloadedExternalTool, ExternalToolRequest, pex_cli.get_request(Platform.create_for_localhost()))
    # The name enters the definition (step names): it names the base, never the image asking,
    # so every image on one base shares one inspection.
    spec = inspection_spec(base, platform, tool_path=tool.exe, name=f"python3 of {base}")
    bases = await Get(ImageBases, ImageBasesRequest(request.address, tuple(registry_bases(spec)), (platform,)))
    try:
        lowered = plan(spec, base_configs=bases.configs(), context_digest=f"sha256:{tool.digest.fingerprint}",
                       source_date_epoch=0, default_platforms=(platform,))
    except LlbkitError as e:
        raise InterpreterInspectionError(f"failed to inspect the python3 of {base} for {platform}: {e}") from None
    job = SolveJob.of(f"python3 of {base}", lowered, ExportOptions(), has_context=True)
    channel = await Get(MachineChannel, MachineChannelRequest())
    code = await Get(SolverCode)
    job_digest = await Get(Digest, CreateDigest(FileContent(f"{JOB_DIR}/{p}", b) for p, b in job.files().items()))
    context = await Get(Digest, AddPrefix(tool.digest, CONTEXT_DIR))
    input_digest = await Get(Digest, MergeDigests([code.digest, job_digest, context]))
    result = await Get(FallibleProcessResult, Process, channel.process(
        code, ("solve", JOB_DIR, "--image", IMAGE_OUT, "--record", RECORD_OUT, "--context", CONTEXT_DIR),
        input_digest=input_digest, output_files=(IMAGE_OUT,),
        description=f"Inspecting the python3 of {base} on {platform}", level=LogLevel.INFO))
    if result.exit_code != 0:
        failure = process_failure(result)
        raise InterpreterInspectionError(
            f"{request.address}: failed to inspect the python3 of {base} on {platform} (to build its PEX copies "
            f"for that platform): {failure.message}. The base needs `python3` on its PATH; or name a complete "
            f'platform instead: complete_platforms={{"{platform}": "//path/to:platform_json"}}.')
    contents = await Get(DigestContents, DigestSubset(result.output_digest, PathGlobs([IMAGE_OUT])))
    try:
        doc = read_complete_platform(contents[0].content)
    except InspectionError as e:
        raise InterpreterInspectionError(f"{request.address}: inspecting the python3 of {base} on {platform}: {e}") from None
    resolved = bases.configs().get((registry_bases(spec)[0], platform))
    markers = doc["marker_environment"]
    expected = _MACHINES.get(platform)
    if expected is not None and markers.get("platform_machine") != expected:
        # A worker that ran another machine's binary (a misconfigured emulator) must not decide
        # which wheels an image gets.
        raise InterpreterInspectionError(
            f"{request.address}: the python3 of {base} inspected for {platform} reports the machine "
            f"{markers.get('platform_machine')!r}, not {expected!r}: check the worker's emulation for {platform}, "
            f'or name a complete platform: complete_platforms={{"{platform}": "//path/to:platform_json"}}.')
    origin = {"source": "inspected", "base": base, "base_digest": getattr(resolved, "digest", None),
              "machine": markers.get("platform_machine"), "python": markers.get("python_full_version")}
    return InspectedInterpreter(json.dumps(doc, sort_keys=True, indent=1).encode(), json.dumps(origin, sort_keys=True))


@rule(desc="Find the Python interpreter of a container_image's platform")
async def image_complete_platform(request: ImageCompletePlatformRequest) -> ImageCompletePlatform:
    if request.file:
        named = UnparsedAddressInputs([request.file], owning_address=request.address,
                                      description_of_origin=f"the `complete_platforms` field of {request.address} "
                                      f"({request.platform})")
        addresses = await Get(Addresses, UnparsedAddressInputs, named)
        cps = await Get(CompletePlatforms, UnparsedAddressInputs, named)
        if not cps:
            raise InterpreterInspectionError(
                f"{request.address}: the `complete_platforms` entry for {request.platform}, {addresses[0]}, has no "
                "file: name a `file` target whose source is the JSON of `pex3 interpreter inspect --markers --tags`.")
        return ImageCompletePlatform(request.platform, cps, json.dumps(
            {"source": "file", "target": str(addresses[0])}, sort_keys=True))
    if request.base is None:
        raise InterpreterInspectionError(
            f"{request.address} copies a PEX into an image built from scratch for {request.platform}: there is "
            f"no interpreter to inspect. Build it on a base with python3, or name a complete platform: "
            f'complete_platforms={{"{request.platform}": "//path/to:platform_json"}} (a `file` target holding '
            f"the output of `pex3 interpreter inspect --markers --tags` on that platform).")
    inspected = await Get(InspectedInterpreter, InspectedInterpreterRequest(request.address, request.base,
                                                                              request.platform))
    digest = await Get(Digest, CreateDigest([FileContent(_file_name(request.platform), inspected.json)]))
    return ImageCompletePlatform(request.platform, CompletePlatforms([_file_name(request.platform)], digest=digest),
                                 inspected.origin)


def rules():
    return collect_rules()
