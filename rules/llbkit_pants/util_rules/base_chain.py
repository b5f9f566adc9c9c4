"""A `container_image`'s base chain: the target, then each `container_image` its `base` names.

`ContainerImageChainRequest(address)` -> `ContainerImageChain`: nearest first, ending at the
image whose `base` is a registry reference, `scratch` or a `dockerfile_image`. Read from the targets' fields only
(nothing is packaged), so both the image spec and the base-image lockfile use it. A base that
is not a `container_image`, and a cycle, are errors naming the chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from pants.engine.addresses import Address, Addresses, UnparsedAddressInputs
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import InvalidFieldException, Target, WrappedTarget, WrappedTargetRequest
from pants.util.strutil import softwrap

from llbkit_pants.dockerfile.target_types import DockerfileImageSourceField
from llbkit_pants.target_types import ContainerImageBaseField


def is_address(value: str) -> bool:
    """`base` and `copy()` sources name a target when they start with `:` or `//`."""
    return value.startswith(":") or value.startswith("//")


def field_error(address: Address, alias: str, message: str) -> InvalidFieldException:
    return InvalidFieldException(f"Invalid field `{alias}` in container_image target {address}: {message}")


@dataclass(frozen=True)
class ContainerImageChainRequest:
    address: Address


@dataclass(frozen=True)
class ContainerImageChain:
    targets: Tuple[Target, ...]  # this target first, then its bases, nearest first
    dockerfile_base: Optional[Address] = None  # the `dockerfile_image` the last one is built on

    @property
    def root_base(self) -> str:
        """The `base` of the last image: a registry reference, `scratch`, or the address of a
        `dockerfile_image` (then `dockerfile_base` is set)."""
        return self.targets[-1][ContainerImageBaseField].value or ""


@rule(desc="Follow a container_image's base chain")
async def container_image_chain(request: ContainerImageChainRequest) -> ContainerImageChain:
    chain: List[Target] = []
    current = request.address
    while True:
        wrapped = await Get(WrappedTarget, WrappedTargetRequest(current, description_of_origin=str(request.address)))
        tgt = wrapped.target
        if chain and tgt.has_field(DockerfileImageSourceField):
            # A Dockerfile image: the chain's root, built on as its packaged OCI layout.
            return ContainerImageChain(tuple(chain), dockerfile_base=tgt.address)
        if chain and not tgt.has_field(ContainerImageBaseField):
            prev = chain[-1]
            raise field_error(prev.address, "base", softwrap(
                f"""
                {prev[ContainerImageBaseField].value!r} is a `{tgt.alias}` target, not a
                `container_image`: use the address of a container_image target, a registry
                reference such as 'docker.io/library/busybox:1.36', or 'scratch'.
                """))
        if any(t.address == tgt.address for t in chain):
            names = " -> ".join(str(t.address) for t in chain + [tgt])
            raise field_error(chain[0].address, "base", softwrap(
                f"""
                cyclic base chain {names}: an image cannot be built on itself; point one of them
                at a registry image or 'scratch'.
                """))
        chain.append(tgt)
        value = tgt[ContainerImageBaseField].value or ""
        if not is_address(value):
            return ContainerImageChain(tuple(chain))
        addresses = await Get(Addresses, UnparsedAddressInputs(
            [value], owning_address=tgt.address,
            description_of_origin=f"the `base` field of {tgt.address}"))
        current = addresses[0]


def rules():
    return collect_rules()
