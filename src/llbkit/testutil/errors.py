"""The one error the test environment raises: something is missing or a daemon failed to start."""

from __future__ import annotations

from llbkit.errors import LlbkitError

PROVISION_HINT = (
    "run build-support/provision.sh (as root; it installs everything the tests need), "
    "or `build-support/provision.sh --print` for the commands to run yourself"
)


class FixtureError(LlbkitError):
    """The test environment cannot be set up: a missing tool, a taken port, a daemon that died.

    The message says what is missing or what failed, with the tail of the daemon's log when there
    is one, and how to fix it.
    """


class CommandError(LlbkitError):
    """A helper command (buildctl, skopeo) exited non-zero; the message has its stderr tail."""

    def __init__(self, argv: "list[str]", returncode: int, stdout: str, stderr: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        last = "\n".join(stderr.strip().splitlines()[-25:])
        super().__init__(f"{' '.join(argv)} exited with code {returncode}:\n{last}")
