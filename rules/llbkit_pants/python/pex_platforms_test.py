from __future__ import annotations

import json

from llbkit_pants.python.pex_platforms import unsatisfied_distributions
from llbkit_pants.util_rules.platform_packages import describe

# What pex 2.33 prints for a locked requirement with no wheel for a foreign complete platform.
PEX_STDERR = """\
No pre-built wheel was available for MarkupSafe 3.0.2.
Successfully built the wheel markupsafe-3.0.2-cp39-cp39-linux_x86_64.whl from the sdist markupsafe-3.0.2.tar.gz \
but it is not compatible with the requested foreign target complete platform cp311-cp311-manylinux_2_36_s390x.
You'll need to build a wheel from markupsafe-3.0.2.tar.gz on the foreign target platform and make it available \
to Pex via a `--find-links` repo or a custom `--index`.
"""


def test_the_missing_distributions_are_read_from_pex() -> None:
    assert unsatisfied_distributions(PEX_STDERR) == ("MarkupSafe",)
    two = "Dependency on grpcio not satisfied, 1 incompatible candidate found:\n" + PEX_STDERR
    assert unsatisfied_distributions(two) == ("grpcio", "MarkupSafe")
    assert unsatisfied_distributions("ERROR: some other failure") == ()


def test_what_a_pex_was_built_for_in_words() -> None:
    inspected = json.dumps({"source": "inspected", "base": "r/python3:3.11", "base_digest": "sha256:ab",
                            "machine": "aarch64", "python": "3.11.2"})
    assert describe(inspected) == "python3 3.11.2 on aarch64, inspected in r/python3:3.11@sha256:ab"
    assert describe(json.dumps({"source": "file", "target": "//p:arm64"})) == "the complete platform in //p:arm64"
    assert describe(json.dumps({"source": "pex_binary", "target": "//p:bin"})) == "the platforms of //p:bin itself"
