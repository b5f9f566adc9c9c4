"""`pants llb` with a registry base given by tag: it prints the base pinned to the digest the
registry names, as `package` solves it (the `registry` fixture serves busybox; no buildkitd)."""

from __future__ import annotations

from textwrap import dedent

from pants.testutil.rule_runner import RuleRunner

from llbkit.testutil.fixtures import busybox_image, pytest_runtest_makereport, registry  # noqa: F401
from llbkit.testutil.registry import Registry
from llbkit_pants import register
from llbkit_pants.goals.llb import Llb


def test_a_tagged_registry_base_is_printed_pinned_to_its_digest(registry: Registry) -> None:
    rule_runner = RuleRunner(rules=register.rules(), target_types=register.target_types(),
                             aliases=[register.build_file_aliases()])
    rule_runner.write_files({"img/BUILD": dedent(f"""\
        container_image(name="img", base="{registry.busybox_ref}", steps=[run("echo hi > /hi")],
                        platforms=["linux/amd64", "linux/arm64"])
        """)})
    # No worker may be used: the registry is asked directly.
    result = rule_runner.run_goal_rule(Llb, global_args=["--buildkit-auto-start=false"], args=["img:img"])
    assert result.exit_code == 0, result.stderr
    assert registry.busybox is not None
    pinned = f"docker-image://{registry.busybox_ref}@{registry.busybox.index_digest}"
    assert result.stdout.count(f'"identifier":"{pinned}"') == 2, result.stdout  # one per platform
    assert "# img:img linux/amd64\n" in result.stdout and "# img:img linux/arm64\n" in result.stdout
