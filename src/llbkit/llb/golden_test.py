"""llbkit builds the same op bytes as Go's client/llb.

testdata/go_client_llb_digests.json holds, for each state of testdata/go_client_llb/main.go, the op
digests Go's client/llb (BuildKit v0.32.2) marshals (regenerate as that file explains). Each state
has a twin here: equal digests mean equal bytes, op for op, so graphs built by llbkit and by Go
frontends (Dockerfile, buildx bake) share buildkitd's cache.

Metadata is not compared (it is not part of the digests): llbkit declares some caps Go omits.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from llbkit import llb

GOLDEN = json.loads((Path(__file__).parent / "testdata" / "go_client_llb_digests.json").read_text())
from llbkit.testutil.llb_states import D64, T, golden_states as states  # noqa: F401

MARSHAL = {
    "meta": dict(constraints=llb.Constraints.of(worker_constraints=["arch==amd64"])),
    "image_digest": dict(platform="linux/arm/v7"),
}


def test_every_golden_state_has_a_twin():
    assert sorted(states()) == sorted(GOLDEN)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_same_op_digests_as_go_client_llb(name):
    kwargs = dict(platform="linux/amd64", local_unique_id="uid1")
    kwargs.update(MARSHAL.get(name, {}))
    d = states()[name].marshal(**kwargs)
    assert list(d.digests) == GOLDEN[name]
