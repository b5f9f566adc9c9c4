"""A `dockerfile_image`'s Dockerfile, parsed by BuildKit's own parser.

`ParsedDockerfileRequest(address)` -> `ParsedDockerfile`: the Dockerfile (its `source`, or its
`instructions` as a generated file), as a digest holding just that file, and its `model.Dockerfile`.
The parser is the `dockerfile` package (Go's BuildKit parser, compiled), run from a PEX in a
Pants process exactly as Pants' docker backend runs it: it uses the same `[dockerfile-parser]`
tool settings and lockfile, with llbkit's own script (`parse_script.py`), which prints the whole
parse tree. The process is cached by the Dockerfile's content.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from pathlib import PurePath

from pants.backend.docker.subsystems.dockerfile_parser import DockerfileParser
from pants.backend.python.target_types import EntryPoint
from pants.backend.python.util_rules import pex
from pants.backend.python.util_rules.pex import PexRequest, VenvPex, VenvPexProcess
from pants.engine.addresses import Address
from pants.engine.fs import CreateDigest, Digest, DigestContents, FileContent
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import (
    HydratedSources,
    HydrateSourcesRequest,
    InvalidFieldException,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.util.logging import LogLevel
from pants.util.resources import read_resource

from llbkit_pants.dockerfile.model import Dockerfile, DockerfileProblem
from llbkit_pants.dockerfile.target_types import (
    DockerfileImageInstructionsField,
    DockerfileImageSourceField,
    dockerfile_path,
)

_SCRIPT = "parse_script.py"


class DockerfileError(InvalidFieldException):
    """A Dockerfile that cannot be parsed or built as written (names the file, line and fix)."""


def problem_error(address: Address, e: DockerfileProblem) -> DockerfileError:
    return DockerfileError(f"dockerfile_image {address}: {e}")


@dataclass(frozen=True)
class DockerfileParserPex:
    pex: VenvPex


@rule(desc="Set up the Dockerfile parser")
async def dockerfile_parser_pex(parser: DockerfileParser) -> DockerfileParserPex:
    script = read_resource("llbkit_pants.dockerfile", _SCRIPT)
    assert script, f"{_SCRIPT} is missing from llbkit_pants.dockerfile"
    digest = await Get(Digest, CreateDigest([FileContent("__llbkit_df_parser.py", script)]))
    pex = await Get(VenvPex, PexRequest, parser.to_pex_request(
        main=EntryPoint(PurePath("__llbkit_df_parser.py").stem), sources=digest))
    return DockerfileParserPex(pex)


@dataclass(frozen=True)
class ParsedDockerfileRequest:
    address: Address


@dataclass(frozen=True)
class ParsedDockerfile:
    address: Address
    path: str  # from the build root
    text: str
    digest: Digest  # the Dockerfile alone, at `path`
    dockerfile: Dockerfile


@rule(desc="Parse a dockerfile_image's Dockerfile")
async def parse_dockerfile(request: ParsedDockerfileRequest, parser: DockerfileParserPex) -> ParsedDockerfile:
    address = request.address
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(address, description_of_origin=str(address)))
    tgt = wrapped.target
    instructions = tgt[DockerfileImageInstructionsField].value
    source = tgt[DockerfileImageSourceField]
    if instructions:
        if source.value != DockerfileImageSourceField.default:
            raise DockerfileError(
                f"Invalid field `instructions` in dockerfile_image target {address}: it is given together with "
                f"`source={source.value!r}`; give one of them.")
        path = posixpath.join(address.spec_path, f"Dockerfile.{address.target_name}")
        digest = await Get(Digest, CreateDigest([FileContent(path, ("\n".join(instructions) + "\n").encode())]))
    else:
        path = dockerfile_path(address, source.value)
        hydrated = await Get(HydratedSources, HydrateSourcesRequest(source))
        if not hydrated.snapshot.files:
            raise DockerfileError(
                f"Invalid field `source` in dockerfile_image target {address}: there is no file {path}: add it, "
                f"point `source` at the Dockerfile (relative to {address.spec_path or 'the build root'}), or give "
                "`instructions`.")
        path = hydrated.snapshot.files[0]
        digest = hydrated.snapshot.digest
    contents = await Get(DigestContents, Digest, digest)
    text = contents[0].content.decode("utf-8", errors="replace")
    result = await Get(ProcessResult, VenvPexProcess(
        parser.pex, argv=(path,), input_digest=digest, description=f"Parse {path}", level=LogLevel.DEBUG))
    doc = json.loads(result.stdout)[0]
    if "error" in doc:
        # BuildKit's own message (its parser's wording); the frontend reports the rest when it runs.
        raise DockerfileError(f"dockerfile_image {address}: {path}: BuildKit's Dockerfile parser: {doc['error']}")
    try:
        model = Dockerfile.parse(path, doc["commands"], text)
    except DockerfileProblem as e:
        raise problem_error(address, e) from None
    return ParsedDockerfile(address, path, text, digest, model)


def rules():
    # The PEX machinery, as Pants' docker backend registers it with its parser (the backend does
    # not require the Python backend to be enabled).
    return [*collect_rules(), *pex.rules()]
