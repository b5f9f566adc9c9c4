from pathlib import Path

import pytest

from llbkit.testutil.errors import FixtureError
from llbkit.testutil.run_image import resolve_user, runc_config

SPEC = {"ociVersion": "1.0.2", "process": {"terminal": True, "args": ["sh"], "env": [], "cwd": "/"},
        "root": {"path": "rootfs", "readonly": True}}


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nstaff:x:50:\n")
    return tmp_path


def test_resolve_user_by_name_number_and_group(rootfs):
    assert resolve_user(rootfs, "") == (0, 0, "/root")
    assert resolve_user(rootfs, "app") == (1000, 1001, "/home/app")
    assert resolve_user(rootfs, "1000") == (1000, 1001, "/home/app")
    assert resolve_user(rootfs, "app:staff") == (1000, 50, "/home/app")
    assert resolve_user(rootfs, "4242:7") == (4242, 7, "/")


def test_resolve_user_unknown_names_are_clear_errors(rootfs):
    with pytest.raises(FixtureError, match="user 'ghost' is not in the image's /etc/passwd"):
        resolve_user(rootfs, "ghost")
    with pytest.raises(FixtureError, match="group 'ghosts'"):
        resolve_user(rootfs, "app:ghosts")


def test_runc_config_runs_entrypoint_then_cmd_with_the_image_env(rootfs):
    image = {"config": {"Entrypoint": ["/app/hello"], "Cmd": ["--config", "x.yaml"],
                        "Env": ["GREETING=hi"], "WorkingDir": "/app", "User": "app"}}
    cfg = runc_config(SPEC, image, rootfs)
    proc = cfg["process"]
    assert proc["args"] == ["/app/hello", "--config", "x.yaml"]
    assert proc["cwd"] == "/app"
    assert proc["user"] == {"uid": 1000, "gid": 1001}
    assert proc["terminal"] is False
    assert proc["env"][0].startswith("PATH=") and "GREETING=hi" in proc["env"]
    assert "HOME=/home/app" in proc["env"]
    assert cfg["root"] == {"path": "rootfs", "readonly": False}
    assert SPEC["process"]["args"] == ["sh"]  # the template is not modified


def test_runc_config_args_replace_cmd_and_env_overrides(rootfs):
    image = {"config": {"Entrypoint": ["sh", "-c"], "Cmd": ["echo a"], "Env": ["PATH=/bin", "X=1"]}}
    cfg = runc_config(SPEC, image, rootfs, args=["echo b"], env={"X": "2"})
    assert cfg["process"]["args"] == ["sh", "-c", "echo b"]
    assert cfg["process"]["env"] == ["PATH=/bin", "HOME=/root", "X=2"]
    assert cfg["process"]["cwd"] == "/"


def test_runc_config_without_a_command_is_an_error(rootfs):
    with pytest.raises(FixtureError, match="neither Entrypoint nor Cmd"):
        runc_config(SPEC, {"config": {}}, rootfs)
