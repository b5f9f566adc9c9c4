"""`[buildkit].entitlements` and `[buildkit].ssh` into the machine settings (no daemon)."""

from __future__ import annotations

import pytest
from pants.testutil.option_util import create_subsystem

from llbkit_pants.subsystems.buildkit import BuildKitSubsystem, Progress
from llbkit_pants.util_rules.machine import BuildKitOptionError, machine_settings


def _buildkit(**options) -> BuildKitSubsystem:  # type: ignore[no-untyped-def]
    defaults = dict(workers=[], tls_ca=None, tls_cert=None, tls_key=None, tls_dir=None, tls_server_name=None,
                    auto_start=True, allow_emulation=True, max_attempts=3, secrets=[], platforms=["linux/amd64"],
                    cache_from=[], cache_to=[], source_date_epoch=0, progress=Progress.quiet, entitlements=[],
                    ssh=[], connect_timeout=5.0, concurrency=0)
    defaults.update(options)
    return create_subsystem(BuildKitSubsystem, **defaults)


def test_entitlements_and_ssh_agents_reach_the_settings() -> None:
    env = {"HOME": "/home/u", "SSH_AUTH_SOCK": "/tmp/ssh-x/agent.1"}
    s = machine_settings(_buildkit(entitlements=["security.insecure", "network.host"],
                                   ssh=["default", "gh=~/.ssh/gh.sock", "rel=agents/ci.sock"]), env, "/repo", "py")
    assert s.entitlements == ("network.host", "security.insecure")
    assert dict(s.ssh) == {"default": "/tmp/ssh-x/agent.1", "gh": "/home/u/.ssh/gh.sock",
                           "rel": "/repo/agents/ci.sock"}


def test_a_bare_agent_without_ssh_auth_sock_is_left_to_the_build_that_needs_it() -> None:
    s = machine_settings(_buildkit(ssh=["default"]), {"HOME": "/home/u"}, "/repo", "py")
    assert dict(s.ssh) == {"default": ""}


@pytest.mark.parametrize("options, fragment", [
    (dict(entitlements=["network.hots"]), "invalid [buildkit].entitlements 'network.hots': unknown entitlement 'network.hots'"),
    (dict(ssh=["my agent"]), "invalid [buildkit].ssh 'my agent': write ID or ID=SOCKET"),
    (dict(ssh=["a=/x", "a=/y"]), "agent 'a' is listed twice"),
])
def test_bad_options_name_the_option(options, fragment: str) -> None:
    with pytest.raises(BuildKitOptionError) as e:
        machine_settings(_buildkit(**options), {}, "/repo", "py")
    assert fragment in str(e.value)
