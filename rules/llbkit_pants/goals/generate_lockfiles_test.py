"""Which bases a resolve's lockfile covers, worked out from BUILD files alone (no registry)."""

from __future__ import annotations

from textwrap import dedent

import pytest
from pants.core.goals.generate_lockfiles import KnownUserResolveNames, UserGenerateLockfiles
from pants.engine.environment import EnvironmentName
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.rules import QueryRule
from pants.testutil.rule_runner import RuleRunner

from llbkit_pants import register
from llbkit_pants.goals.generate_lockfiles import (
    GenerateContainerImageLockfile,
    KnownContainerImageResolveNamesRequest,
    RequestedContainerImageResolveNames,
)

BUSYBOX = "registry.example.com/library/busybox"


@pytest.fixture
def rule_runner() -> RuleRunner:
    runner = RuleRunner(rules=[*register.rules(),
                               QueryRule(UserGenerateLockfiles, [RequestedContainerImageResolveNames, EnvironmentName]),
                               QueryRule(KnownUserResolveNames, [KnownContainerImageResolveNamesRequest])],
                        target_types=register.target_types(), aliases=[register.build_file_aliases()])
    runner.set_options(["--base-images-resolves={'container-images': 'a.lock', 'legacy': 'legacy.lock'}",
                        "--buildkit-platforms=['linux/amd64']"])
    return runner


def _requests(rule_runner: RuleRunner, *names: str) -> dict:
    result = rule_runner.request(UserGenerateLockfiles, [RequestedContainerImageResolveNames(names)])
    out = {}
    for req in result:
        assert isinstance(req, GenerateContainerImageLockfile)
        out[req.resolve_name] = (req.lockfile_dest, req.bases)
    return out


def test_each_resolve_locks_the_root_registry_base_of_its_images_for_their_platforms(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"app/BUILD": dedent(f"""\
        container_image(name="base", base="{BUSYBOX}:1.36")
        container_image(name="child", base=":base", platforms=["linux/arm64", "linux/x86_64"])
        container_image(name="py", base="registry.example.com/python:3.12", platforms=["linux/arm64"])
        container_image(name="pinned", base="{BUSYBOX}@sha256:{'a' * 64}")
        container_image(name="empty", base="scratch")
        container_image(name="old", base="busybox:1.35", resolve="legacy")
        """)})
    assert _requests(rule_runner, "container-images", "legacy") == {
        "container-images": ("a.lock", (
            (f"{BUSYBOX}:1.36", ("linux/amd64", "linux/arm64")),  # the base's own, and its child's
            ("registry.example.com/python:3.12", ("linux/arm64",)),
        )),
        "legacy": ("legacy.lock", (("docker.io/library/busybox:1.35", ("linux/amd64",)),)),
    }
    assert _requests(rule_runner, "legacy").keys() == {"legacy"}


def test_the_resolves_are_known_to_generate_lockfiles(rule_runner: RuleRunner) -> None:
    known = rule_runner.request(KnownUserResolveNames, [KnownContainerImageResolveNamesRequest()])
    assert known.names == ("container-images", "legacy") and known.option_name == "[base-images].resolves"


def test_an_unknown_resolve_field_value_names_the_target_and_the_known_resolves(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"app/BUILD": f'container_image(name="img", base="{BUSYBOX}:1", resolve="nope")\n'})
    with pytest.raises(ExecutionError) as e:
        _requests(rule_runner, "container-images")
    assert ("Invalid field `resolve` in container_image target app:img: 'nope' is not a resolve of "
            "[base-images].resolves (it has: container-images, legacy)") in str(e.value)


def test_diff_lists_added_removed_and_moved_references() -> None:
    from llbkit.builder.base_lock import BaseLock, LockedBase
    from llbkit_pants.goals.generate_lockfiles import lockfile_diff

    a, b, c = (f"sha256:{ch * 64}" for ch in "abc")
    before = BaseLock("container-images", (LockedBase(f"{BUSYBOX}:1.36", a), LockedBase("example.com/gone:1", b),
                                           LockedBase("example.com/same:1", c)))
    text = before.render("./pants generate-lockfiles --resolve=container-images").encode()
    diff = lockfile_diff("a.lock", "container-images", text, (
        LockedBase(f"{BUSYBOX}:1.36", b), LockedBase("example.com/same:1", c), LockedBase("example.com/new:2", a)))
    assert dict(diff.upgraded) == {f"{BUSYBOX}:1.36": (a, b)}  # the tag moved
    assert dict(diff.removed) == {"example.com/gone:1": b}
    assert dict(diff.added) == {"example.com/new:2": a}
    assert dict(diff.unchanged) == {"example.com/same:1": c} and not diff.downgraded
    # No lockfile before (or a damaged one): everything is added.
    for old in (None, b"not a lockfile"):
        fresh = lockfile_diff("a.lock", "container-images", old, (LockedBase("example.com/new:2", a),))
        assert dict(fresh.added) == {"example.com/new:2": a} and not fresh.removed
