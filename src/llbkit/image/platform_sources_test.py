from __future__ import annotations

import json
from typing import List

import pytest

from llbkit import llb
from llbkit.image import (
    ContextSource,
    CopyStep,
    ImageSource,
    ImageSpec,
    ImageSpecError,
    MissingPlatformSourceError,
    PlatformSource,
    RegistryBase,
    SpecBase,
    for_platform,
    lower,
    plan,
    platform_copies,
    validate_spec,
)

BASE = "registry.example.com/python3:3.11"
CONFIGS = {BASE: {"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}}}

AMD = ContextSource("context", ".llbkit-targets/app/linux_amd64/app.pex", files=(("", True),))
ARM = ContextSource("context", ".llbkit-targets/app/linux_arm64/app.pex", files=(("", True),))
PER_PLATFORM = PlatformSource((("linux/amd64", AMD), ("linux/arm64", ARM)))


def spec(source: object = PER_PLATFORM, platforms: tuple = ("linux/amd64", "linux/arm64")) -> ImageSpec:
    return ImageSpec(name="//app:img", base=RegistryBase(BASE), steps=(CopyStep(source, "/app/app.pex"),),
                     platforms=platforms)


def includes(definition: llb.Definition) -> List[str]:
    d = llb.load(definition.to_bytes())
    (local,) = [op for op in d.ops if op.kind == "source" and op.body["identifier"].startswith("local://")]
    return json.loads(local.body["attrs"]["local.includepattern"])


def test_each_platform_loads_only_its_own_source() -> None:
    amd, arm = plan(spec(), base_configs=CONFIGS)
    assert includes(amd.definition) == [AMD.path]
    assert includes(arm.definition) == [ARM.path]
    # the same as a plain copy of that platform's file: nothing else differs
    plain = lower(spec(ARM), "linux/arm64", base_configs=CONFIGS)
    assert arm.definition.to_bytes() == plain.definition.to_bytes()


def test_a_platform_without_a_source_is_an_error_naming_it() -> None:
    only_amd = PlatformSource((("linux/amd64", AMD),))
    with pytest.raises(MissingPlatformSourceError) as e:
        plan(spec(only_amd), base_configs=CONFIGS)
    assert e.value.field == "steps[0].source" and e.value.value == "linux/arm64"
    assert "linux/amd64" in e.value.fix


def test_selection_reaches_base_chains_and_copied_images() -> None:
    inner = spec(platforms=())
    outer = ImageSpec(name="//app:outer", base=SpecBase(inner),
                      steps=(CopyStep(ImageSource(spec(platforms=()), "/app"), "/copied"),),
                      platforms=("linux/amd64", "linux/arm64"))
    picked = for_platform(outer, "linux/arm64")
    assert isinstance(picked.base, SpecBase) and picked.base.spec.steps[0].source == ARM
    assert picked.steps[0].source.image.steps[0].source == ARM
    assert [(name, i) for name, i, _ in platform_copies(outer)] == [("//app:img", 0), ("//app:img", 0)]
    plain = ImageSpec(name="//x", base=RegistryBase(BASE), steps=(CopyStep(AMD, "/a"),))
    assert for_platform(plain, "linux/amd64") is plain


@pytest.mark.parametrize("bad,problem", [
    (PlatformSource(()), "at least one platform"),
    (PlatformSource((("linux/x86_64", AMD),)), "must be normalized"),
    (PlatformSource((("linux/amd64", AMD), ("linux/amd64", ARM))), "two sources for one platform"),
    (PlatformSource((("linux/amd64", "app.pex"),)), "invalid per-platform source"),
    (PlatformSource((("linux/amd64", ContextSource("context", "/abs")),)), "relative"),
])
def test_invalid_platform_sources(bad: PlatformSource, problem: str) -> None:
    with pytest.raises(ImageSpecError) as e:
        validate_spec(spec(bad))
    assert problem in str(e.value)
