"""The one base-resolution path, with mocked gets: a locked tag is asked as its locked digest and
checked against the lock; an unlocked one follows `[base-images].unlocked_behavior`."""

from __future__ import annotations

import hashlib
import logging
from typing import List, Optional

import pytest
from pants.engine.addresses import Address
from pants.testutil.option_util import create_subsystem
from pants.testutil.rule_runner import MockGet, run_rule_with_mocks

from llbkit.builder.base_lock import BaseLock, LockedBase, LockedPlatform
from llbkit.image import ResolvedBase
from llbkit_pants.subsystems.base_images import BaseImagesSubsystem, UnlockedBehavior
from llbkit_pants.util_rules.base_lock import BaseLockRequest, ImageResolve, ImageResolveRequest, LoadedBaseLock
from llbkit_pants.util_rules.bases import (
    ImageBases,
    ImageBasesRequest,
    LockMismatchError,
    RegistryBaseRequest,
    RegistryBaseResolution,
    UnlockedBaseError,
    image_bases,
)

REF = "registry.example.com/library/python:3.12"
PINNED = "registry.example.com/library/busybox@sha256:" + "9" * 64
INDEX = "sha256:" + "1" * 64
CONFIG = b'{"architecture":"amd64","os":"linux"}'
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
ADDRESS = Address("app", target_name="img")
LOCKFILE = "3rdparty/container-images.lock"


def _lock(config_digest: str = CONFIG_DIGEST, platforms=("linux/amd64",)) -> BaseLock:
    return BaseLock("container-images", (LockedBase(REF, INDEX, tuple(
        LockedPlatform(p, "sha256:" + "2" * 64, config_digest) for p in platforms)),))


def _run(lock: Optional[BaseLock], behavior: UnlockedBehavior, refs=(REF,),
         platforms=("linux/amd64",)) -> "tuple[ImageBases, List[str]]":
    asked: List[str] = []

    def resolve(req: RegistryBaseRequest) -> RegistryBaseResolution:
        asked.append(req.ref)
        return RegistryBaseResolution(req.ref, tuple((p, ResolvedBase(CONFIG, INDEX)) for p in req.platforms), ())

    subsystem = create_subsystem(BaseImagesSubsystem, unlocked_behavior=behavior,
                                 resolves={"container-images": LOCKFILE}, default_resolve="container-images")
    result = run_rule_with_mocks(image_bases, rule_args=[ImageBasesRequest(ADDRESS, tuple(refs), tuple(platforms)), subsystem],
                                 mock_gets=[
        MockGet(output_type=ImageResolve, input_types=(ImageResolveRequest,),
                mock=lambda _: ImageResolve("container-images", LOCKFILE)),
        MockGet(output_type=LoadedBaseLock, input_types=(BaseLockRequest,),
                mock=lambda req: LoadedBaseLock(req.resolve, LOCKFILE, lock)),
        MockGet(output_type=RegistryBaseResolution, input_types=(RegistryBaseRequest,), mock=resolve),
    ])
    return result, asked


def test_a_locked_tag_is_resolved_as_its_locked_digest_and_keyed_by_the_tag() -> None:
    result, asked = _run(_lock(), UnlockedBehavior.error)
    assert asked == [f"{REF}@{INDEX}"]  # a pinned reference: cached by Pants, no tag lookup
    assert result.configs() == {(REF, "linux/amd64"): ResolvedBase(CONFIG, INDEX)}


def test_a_base_named_by_digest_needs_no_lock() -> None:
    _, asked = _run(None, UnlockedBehavior.error, refs=(PINNED,))
    assert asked == [PINNED]


@pytest.mark.parametrize("lock, platforms, fragment", [
    (None, ("linux/amd64",), f"the lockfile {LOCKFILE} of resolve `container-images` does not exist"),
    (BaseLock("container-images", ()), ("linux/amd64",), f"it is not in the lockfile {LOCKFILE}"),
    (_lock(), ("linux/amd64", "linux/arm64"),
     "does not hold it for linux/arm64: it is older than the BUILD files that use it"),
])
def test_an_unlocked_tag_is_an_error_naming_target_reference_and_command(lock, platforms, fragment) -> None:
    with pytest.raises(UnlockedBaseError) as e:
        _run(lock, UnlockedBehavior.error, platforms=platforms)
    message = str(e.value)
    assert message.startswith(f"container_image {ADDRESS}: base image {REF} is named by tag")
    assert fragment in message
    assert "pants generate-lockfiles --resolve=container-images" in message


def test_warn_resolves_the_tag_and_says_how_to_lock_it(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        _, asked = _run(None, UnlockedBehavior.warn)
    assert asked == [REF]
    assert "generate-lockfiles --resolve=container-images" in caplog.text
    assert "Resolved it against the registry for this run" in caplog.text


def test_resolve_follows_the_tag_silently(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        _, asked = _run(None, UnlockedBehavior.resolve)
    assert asked == [REF] and caplog.text == ""


def test_a_config_that_differs_from_the_lock_is_refused() -> None:
    with pytest.raises(LockMismatchError) as e:
        _run(_lock(config_digest="sha256:" + "3" * 64), UnlockedBehavior.error)
    assert f"has config {CONFIG_DIGEST} in its registry, but the lockfile recorded sha256:{'3' * 64}" in str(e.value)
