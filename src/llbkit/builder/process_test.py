"""What a solve job asks of the daemon and the session, read from its definitions (no daemon)."""

from __future__ import annotations

from llbkit.builder.job import ExportOptions, SolveJob
from llbkit.builder.process import job_needs
from llbkit.image import ImageSpec, RunStep, SshMount, plan


def _job(*steps) -> SolveJob:
    spec = ImageSpec(name="//app:img", steps=tuple(steps), platforms=("linux/amd64", "linux/arm64"))
    return SolveJob.of(spec.name, plan(spec), ExportOptions())


def test_entitlements_and_ssh_agents_of_a_job() -> None:
    job = _job(RunStep(["/x"], network="host"), RunStep(["/y"], security="insecure"),
               RunStep(["/z"], mounts=(SshMount(required=True), SshMount("gh", target="/gh.sock"))))
    assert job_needs(job) == (("network.host", "security.insecure"), {"default": True, "gh": False})


def test_a_plain_job_needs_nothing() -> None:
    # A daemon refuses a solve that asks for an entitlement it does not allow: ask for none.
    assert job_needs(_job(RunStep(["/x"], network="none"))) == ((), {})


def test_a_frontend_job_needs_what_its_options_and_inputs_ask_for() -> None:
    from llbkit.builder.job import FrontendCall, JobPlatform

    named = _job(RunStep(["/x"], network="host"))  # another image's LLB, given as a named context
    call = FrontendCall("dockerfile.v0", (("force-network-mode", "host"), ("context:base", "input:base")),
                        (("base", named.platforms[0].definition),))
    job = SolveJob("//app:df", (JobPlatform("linux/amd64", b"", b"", frontend=call),), ExportOptions())
    assert job_needs(job) == (("network.host",), {})
    plain = SolveJob("//app:df", (JobPlatform("linux/amd64", b"", b"", frontend=FrontendCall("dockerfile.v0")),),
                     ExportOptions())
    assert job_needs(plain) == ((), {})
    # A Dockerfile's own RUN --network=host / --security=insecure, read from it by the caller.
    own = FrontendCall("dockerfile.v0", entitlements=("security.insecure", "network.host"))
    job = SolveJob("//app:df", (JobPlatform("linux/amd64", b"", b"", frontend=own),), ExportOptions())
    assert job_needs(job) == (("network.host", "security.insecure"), {})
