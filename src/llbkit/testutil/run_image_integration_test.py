"""run_image against real images: the busybox layout of the fixtures, on both platforms."""

import pytest

from llbkit.testutil.busybox_image import BusyboxImage
from llbkit.testutil.errors import FixtureError
from llbkit.testutil.run_image import run_image


@pytest.mark.parametrize("platform, machine", [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")])
def test_runs_the_platforms_image(busybox_image: BusyboxImage, platform: str, machine: str) -> None:
    result = run_image(busybox_image.layout, platform,
                       args=["sh", "-c", "uname -m; echo $PATH; id -u; pwd; echo err >&2"]).check()
    assert result.stdout.splitlines() == [
        machine, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "0", "/"]
    assert result.stderr == "err\n"


def test_exit_codes_and_env_are_passed(busybox_image: BusyboxImage) -> None:
    result = run_image(busybox_image.layout, args=["sh", "-c", "echo $X; exit 3"], env={"X": "y"})
    assert (result.returncode, result.stdout) == (3, "y\n")
    with pytest.raises(FixtureError, match="exited with code 3"):
        result.check()


def test_a_missing_platform_names_those_present(busybox_image: BusyboxImage) -> None:
    with pytest.raises(FixtureError, match=r"has no linux/s390x image \(it has: linux/amd64, linux/arm64\)"):
        run_image(busybox_image.layout, "linux/s390x")
