from __future__ import annotations

import pytest

from llbkit.buildkit.errors import ExportSpecError
from llbkit.buildkit.options import CacheOption, Export, parse_cache_export, parse_cache_import, parse_output


def test_parse_outputs():
    e = parse_output("type=image,name=r/x:1,push=true")
    assert e == Export("image", {"name": "r/x:1", "push": "true"}, None) and not e.needs_session
    e = parse_output('type=image,"name=a/b:1,a/b:2",push=true')
    assert e.attrs["name"] == "a/b:1,a/b:2"
    assert parse_output("type=oci,dest=out.tar,rewrite-timestamp=true") == Export("oci", {"rewrite-timestamp": "true"}, "out.tar")
    assert parse_output("type=local,dest=dir").needs_session
    assert parse_output("type=registry,name=r/x") == Export("image", {"name": "r/x", "push": "true"})


@pytest.mark.parametrize("spec,msg", [
    ("name=x", "type=<"), ("type=foo", "unknown type 'foo'"), ("type=oci", "dest=<file>"),
    ("type=local", "dest=<directory>"), ("type=image,dest=x", "takes no dest"), ("type=tar,output=x", "dest=x"),
    ("type=local,dest=-", "stdout"), ("type=oci,dest=-,tar=false", "stdout"),
    ("type=oci,tar=false", "dest=<directory>"), ("type=image,push", "not key=value"),
])
def test_bad_outputs(spec, msg):
    with pytest.raises(ExportSpecError, match="invalid --output") as ei:
        parse_output(spec)
    assert msg in str(ei.value)


def test_export_constructors():
    assert Export.image("r/x", push=True, push_by_digest=True).attrs == {"name": "r/x", "push": "true", "push-by-digest": "true"}
    assert Export.oci("o.tar", rewrite_timestamp=True) == Export("oci", {"rewrite-timestamp": "true"}, "o.tar")
    assert Export.docker("d.tar", name="x").attrs == {"name": "x"}


def test_cache_specs():
    assert parse_cache_export("type=registry,ref=r/c,mode=max") == CacheOption("registry", {"ref": "r/c", "mode": "max"})
    assert parse_cache_import("r/c:tag") == CacheOption("registry", {"ref": "r/c:tag"})
    assert parse_cache_export("type=inline") == CacheOption.inline()
    with pytest.raises(ExportSpecError, match="needs ref="):
        parse_cache_import("type=registry")
    assert parse_cache_export("type=local,dest=c,mode=max") == CacheOption.local_export("c", mode="max")
    assert parse_cache_import("type=local,src=c") == CacheOption.local_import("c")
    with pytest.raises(ExportSpecError, match="needs dest=<directory>"):
        parse_cache_export("type=local,src=x")
    with pytest.raises(ExportSpecError, match="needs src=<directory>"):
        parse_cache_import("type=local")


def test_layout_dir_and_stdout_outputs():
    e = parse_output("type=oci,dest=layout,tar=false")
    assert e.is_layout_dir and e.dest == "layout" and e.attrs == {"tar": "false"} and e.needs_session
    assert not parse_output("type=oci,dest=o.tar").is_layout_dir
    assert parse_output("type=docker,dest=-").to_stdout
    assert parse_output("type=tar,dest=-").to_stdout
