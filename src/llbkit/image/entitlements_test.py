"""Which runs need which entitlement, and the error for one not enabled (no daemon)."""

from __future__ import annotations

import pytest

from llbkit.image import BindMount, ImageSpec, RunStep, ScratchBase, SpecBase
from llbkit.image.entitlements import (
    EntitlementUse,
    MissingEntitlementError,
    check_entitlements,
    parse_entitlements,
    required_entitlements,
)


def test_uses_in_the_image_its_bases_and_mounted_images() -> None:
    mounted = ImageSpec(name="m", steps=(RunStep(["/x"], security="insecure"),))
    base = ImageSpec(name="b", steps=(RunStep(["/x"], network="host"),))
    spec = ImageSpec(name="i", base=SpecBase(base), steps=(
        RunStep(["/x"], network="none"), RunStep(["/y"], mounts=(BindMount("/m", SpecBase(mounted)),))))
    assert set(required_entitlements(spec)) == {
        EntitlementUse("network.host", "b", "steps[0].network", "host"),
        EntitlementUse("security.insecure", "m", "steps[0].security", "insecure"),
    }
    assert check_entitlements(spec, ["network.host", "security.insecure"]) == ("network.host", "security.insecure")
    assert check_entitlements(ImageSpec(name="plain", base=ScratchBase()), []) == ()


def test_missing_entitlement_names_image_step_value_and_fix() -> None:
    spec = ImageSpec(name="//app:img", steps=(RunStep(["/x"]), RunStep(["/y"], network="host")))
    with pytest.raises(MissingEntitlementError) as e:
        check_entitlements(spec, [], how_to_enable="add {entitlement} to the list")
    err = e.value
    assert (err.spec_name, err.field, err.value, err.entitlement) == ("//app:img", "steps[1].network", "host",
                                                                      "network.host")
    assert str(err) == ("//app:img: field 'steps[1].network': this run needs the network.host entitlement, which is "
                        "not enabled: 'host': add network.host to the list; or drop network='host'")


def test_parse_entitlements() -> None:
    assert parse_entitlements(["security.insecure", "network.host", "network.host"]) == ("network.host",
                                                                                      "security.insecure")
    with pytest.raises(ValueError, match="unknown entitlement 'network.hots'"):
        parse_entitlements(["network.hots"], where="[buildkit].entitlements")
