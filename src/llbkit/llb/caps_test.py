from __future__ import annotations

from llbkit.llb import caps
from llbkit.testutil.llb_states import golden_states, odd_states
from llbkit.testutil.llb_examples import catalogue


def test_cap_lists():
    # The counts are checked against buildkitd's own list in caps_integration_test.py.
    assert caps.UNREGISTERED_CAPS <= caps.ALL_CAPS
    assert caps.SUPPORTED_CAPS == caps.ALL_CAPS - caps.UNREGISTERED_CAPS
    assert caps.SOURCE_HTTP_UID_GID == "soruce.http.uidgid"  # BuildKit's spelling, on the wire


def test_every_cap_llbkit_declares_is_supported_by_buildkitd():
    states = list(golden_states().values()) + list(odd_states().values())
    states += [e.state for e in catalogue("127.0.0.1:5000")]
    declared = set()
    for st in states:
        declared |= st.marshal("linux/amd64", local_unique_id="u").required_caps()
    assert declared <= caps.SUPPORTED_CAPS, sorted(declared - caps.SUPPORTED_CAPS)
    assert len(declared) > 40  # the states above exercise most options


def test_missing_caps():
    assert caps.missing_caps(["a", "b"], ["b", "c"]) == ["a"]
    assert caps.missing_caps([], []) == []
