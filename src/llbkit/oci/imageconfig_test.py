from __future__ import annotations

import json

import pytest

from llbkit.errors import InvalidPlatformError
from llbkit.oci.errors import ImageConfigError
from llbkit.oci.imageconfig import DEFAULT_PATH, HistoryEntry, ImageConfig

BASE = {
    "architecture": "amd64", "os": "linux", "created": "2020-01-01T00:00:00Z",
    "config": {"Env": ["PATH=/bin", "LANG=C"], "Cmd": ["sh"], "WorkingDir": "/srv", "Labels": {"base": "1"},
               "ExposedPorts": {"22/tcp": {}}},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]},
    "history": [{"created_by": "base layer"}],
}


def test_without_base():
    c = ImageConfig(entrypoint=["/app"], exposed_ports=["8080"], volumes=["/data"], user="app").to_oci("linux/arm64/v8")
    assert (c["os"], c["architecture"], c.get("variant")) == ("linux", "arm64", None)  # v8 is arm64's default
    assert c["config"] == {"Env": [f"PATH={DEFAULT_PATH}"], "Entrypoint": ["/app"], "User": "app",
                           "ExposedPorts": {"8080/tcp": {}}, "Volumes": {"/data": {}}}
    assert c["rootfs"] == {"type": "layers", "diff_ids": []} and "history" not in c


def test_docker_style_inheritance():
    cfg = ImageConfig(env={"LANG": "C.UTF-8", "APP": "1"}, labels={"team": "x"}, exposed_ports=["80/udp"],
                      history=[HistoryEntry(created_by="RUN build")]).to_oci("linux/amd64", BASE)
    c = cfg["config"]
    assert c["Env"] == ["PATH=/bin", "LANG=C.UTF-8", "APP=1"]
    assert c["Cmd"] == ["sh"] and c["WorkingDir"] == "/srv"
    assert c["Labels"] == {"base": "1", "team": "x"}
    assert c["ExposedPorts"] == {"22/tcp": {}, "80/udp": {}}
    assert cfg["history"] == [{"created_by": "base layer"}, {"created_by": "RUN build"}]
    assert cfg["rootfs"]["diff_ids"] == ["sha256:aa"] and "created" not in cfg


def test_entrypoint_resets_inherited_cmd():
    c = ImageConfig(entrypoint=["/app"]).to_oci("linux/amd64", BASE)["config"]
    assert c["Entrypoint"] == ["/app"] and "Cmd" not in c
    c = ImageConfig(entrypoint=["/app"], cmd=["--x"]).to_oci("linux/amd64", BASE)["config"]
    assert c["Cmd"] == ["--x"]
    c = ImageConfig(cmd=[]).to_oci("linux/amd64", BASE)["config"]
    assert "Cmd" not in c


def test_from_dict_and_errors():
    c = ImageConfig.from_dict({"env": {"A": "1"}, "cmd": ["x"], "exposed_ports": ["1"], "history": [{"created_by": "y"}]})
    assert c.env == {"A": "1"} and c.cmd == ["x"] and c.history[0].created_by == "y"
    with pytest.raises(ImageConfigError, match="unknown image config field"):
        ImageConfig.from_dict({"Env": []})
    with pytest.raises(ImageConfigError, match="list of strings"):
        ImageConfig.from_dict({"cmd": "sh"})
    with pytest.raises(ImageConfigError, match="invalid exposed port"):
        ImageConfig(exposed_ports=["http"]).to_oci("linux/amd64")
    with pytest.raises(InvalidPlatformError, match="invalid platform"):
        ImageConfig().to_oci("linux")
    assert json.loads(ImageConfig().to_json_bytes("linux/amd64"))["os"] == "linux"


def test_exposed_port_ranges_expand_as_in_the_image_spec():
    cfg = ImageConfig(exposed_ports=["8000-8001/udp", "80"]).to_oci("linux/amd64")
    assert cfg["config"]["ExposedPorts"] == {"80/tcp": {}, "8000/udp": {}, "8001/udp": {}}
