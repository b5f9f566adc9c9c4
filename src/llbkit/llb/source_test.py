from __future__ import annotations

import json

import pytest

from llbkit import llb
from llbkit.llb import caps
from llbkit.testutil.llb_testing import AMD64, head, marshal

D = "sha256:" + "0123456789abcdef" * 4


def source_of(state, **kw):
    d = marshal(state, **kw)
    assert len(d) == 2  # the source and the terminal op
    op = head(d)
    assert op.kind == "source"
    assert op.inputs == ()
    return op


def test_scratch_marshals_to_an_empty_definition():
    d = llb.scratch().marshal(AMD64)
    assert len(d) == 0 and d.head is None and d.terminal is None
    assert llb.load(d.to_bytes()).digests == ()


def test_image_normalizes_and_is_platform_specific():
    op = source_of(llb.image("busybox"))
    assert op.body == {"identifier": "docker-image://docker.io/library/busybox:latest"}
    assert op.platform == llb.Platform("linux", "amd64")
    assert op.worker_constraints == ()
    assert op.metadata.caps == {caps.SOURCE_IMAGE}


def test_image_platform_option_wins_over_marshal_platform():
    st = llb.image("busybox", platform="linux/arm/v7")
    assert st.get_platform() == llb.Platform("linux", "arm", "v7")
    assert source_of(st).platform == llb.Platform("linux", "arm", "v7")


def test_image_options():
    op = source_of(
        llb.image(
            "ghcr.io/a/b:1",
            resolve_mode="pull",
            layer_limit=2,
            checksum=D,
            record_type="internal",
        )
    )
    assert op.body["attrs"] == {
        "image.resolvemode": "pull",
        "image.layerlimit": "2",
        "image.checksum": D,
        "image.recordtype": "internal",
    }
    assert op.metadata.caps == {
        caps.SOURCE_IMAGE,
        caps.SOURCE_IMAGE_RESOLVE_MODE,
        caps.SOURCE_IMAGE_LAYER_LIMIT,
        caps.SOURCE_IMAGE_CHECKSUM,
    }


def test_image_resolve_modes():
    assert "attrs" not in source_of(llb.image("a", resolve_mode=llb.ResolveMode.DEFAULT)).body
    local_mode = source_of(llb.image("a", resolve_mode=llb.ResolveMode.PREFER_LOCAL))
    assert local_mode.body["attrs"] == {"image.resolvemode": "local"}
    assert caps.SOURCE_IMAGE_RESOLVE_MODE not in local_mode.metadata.caps  # only force-pull needs it
    with pytest.raises(llb.InvalidArgumentError, match="image: unknown resolve_mode 'always'"):
        llb.image("a", resolve_mode="always")


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(ref=""), "image reference must be a non-empty string"),
        (dict(ref="Nope"), "must be lowercase"),
        (dict(ref="a", layer_limit=-1), "layer_limit"),
        (dict(ref="a", checksum="sha256:xyz"), "invalid digest"),
        (dict(ref="a", platform="linux"), "image: invalid platform 'linux'"),
    ],
)
def test_image_errors(kwargs, fragment):
    with pytest.raises(llb.LLBError, match=fragment) as e:
        llb.image(**kwargs)
    assert str(e.value).startswith("image: ")


def test_local_attrs_and_caps():
    op = source_of(
        llb.local(
            "context",
            include_patterns=["src/", "a<b>&c"],
            exclude_patterns=["*.pyc"],
            follow_paths=["src"],
            shared_key_hint="ctx",
            differ="none",
            differ_required=True,
            session_id="sess",
        )
    )
    assert op.platform is None
    assert op.body["identifier"] == "local://context"
    attrs = op.body["attrs"]
    # Patterns are JSON-encoded exactly as Go's json.Marshal does (HTML characters escaped).
    assert attrs["local.includepattern"] == '["src/","a\\u003cb\\u003e\\u0026c"]'
    assert json.loads(attrs["local.includepattern"]) == ["src/", "a<b>&c"]
    assert attrs["local.excludepatterns"] == '["*.pyc"]'
    assert attrs["local.followpaths"] == '["src"]'
    assert attrs["local.sharedkeyhint"] == "ctx"
    assert attrs["local.differ"] == "none"
    assert attrs["local.session"] == "sess"
    assert "local.unique" not in attrs  # a session id makes the unique id unnecessary
    assert op.metadata.caps == {
        caps.SOURCE_LOCAL,
        caps.SOURCE_LOCAL_SESSION_ID,
        caps.SOURCE_LOCAL_INCLUDE_PATTERNS,
        caps.SOURCE_LOCAL_EXCLUDE_PATTERNS,
        caps.SOURCE_LOCAL_FOLLOW_PATHS,
        caps.SOURCE_LOCAL_SHARED_KEY_HINT,
        caps.SOURCE_LOCAL_DIFFER,
    }


def test_local_unique_id_comes_from_marshal():
    st = llb.local("ctx")
    plain = source_of(st)
    assert "attrs" not in plain.body and plain.metadata.caps == {caps.SOURCE_LOCAL}
    tagged = source_of(st, local_unique_id="ctx-digest")
    assert tagged.body["attrs"] == {"local.unique": "ctx-digest"}
    assert tagged.metadata.caps == {caps.SOURCE_LOCAL, caps.SOURCE_LOCAL_UNIQUE}
    assert plain.digest != tagged.digest


def test_local_metadata_only_and_empty_pattern_lists():
    op = source_of(llb.local("c", include_patterns=[], metadata_only=["*.go"]))
    assert op.body["attrs"] == {"local.metadatatransfer": "true", "local.metadatatransferexclude": '["*.go"]'}
    assert caps.SOURCE_LOCAL_METADATA_TRANSFER in op.metadata.caps


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(name=""), "local name must be a non-empty string"),
        (dict(name="c", include_patterns="*.py"), "include_patterns must be a list"),
        (dict(name="c", exclude_patterns=[""]), "exclude_patterns"),
        (dict(name="c", differ="content"), "unknown differ 'content'"),
        (dict(name="c", differ_required=True), "differ_required"),
    ],
)
def test_local_errors(kwargs, fragment):
    with pytest.raises(llb.InvalidArgumentError, match=fragment) as e:
        llb.local(**kwargs)
    assert str(e.value).startswith("local: ")


def test_git_https_with_ref_and_subdir():
    op = source_of(llb.git("https://github.com/moby/buildkit.git", "v0.32.2:frontend/", keep_git_dir=True))
    assert op.platform is None
    assert op.body["identifier"] == "git://github.com/moby/buildkit.git#v0.32.2:frontend"
    assert op.body["attrs"] == {
        "git.fullurl": "https://github.com/moby/buildkit.git",
        "git.keepgitdir": "true",
        "git.authtokensecret": "GIT_AUTH_TOKEN",
        "git.authheadersecret": "GIT_AUTH_HEADER",
    }
    assert op.metadata.caps == {
        caps.SOURCE_GIT,
        caps.SOURCE_GIT_FULL_URL,
        caps.SOURCE_GIT_KEEP_DIR,
        caps.SOURCE_GIT_SUBDIR,
    }


def test_git_url_forms():
    assert source_of(llb.git("github.com/moby/buildkit")).body["identifier"] == "git://github.com/moby/buildkit"
    scp = source_of(llb.git("git@github.com:moby/buildkit.git", "main", known_ssh_hosts="github.com ssh-ed25519 AAAA"))
    assert scp.body["identifier"] == "git://github.com/moby/buildkit.git#main"
    assert scp.body["attrs"]["git.fullurl"] == "git@github.com:moby/buildkit.git"
    assert scp.body["attrs"]["git.knownsshhosts"] == "github.com ssh-ed25519 AAAA\n"
    assert scp.body["attrs"]["git.mountsshsock"] == "default"
    assert {caps.SOURCE_GIT_KNOWN_SSH_HOSTS, caps.SOURCE_GIT_MOUNT_SSH_SOCK} <= scp.metadata.caps
    # Query and fragment are not part of the remote URL.
    q = source_of(llb.git("https://example.com/r.git?x=1#frag", "dev"))
    assert q.body["attrs"]["git.fullurl"] == "https://example.com/r.git"
    # The same repository over https and ssh has the same identifier.
    assert (
        source_of(llb.git("ssh://git@example.com/r.git")).body["identifier"]
        == source_of(llb.git("https://example.com/r.git")).body["identifier"]
    )


def test_git_options():
    op = source_of(
        llb.git(
            "https://example.com/r.git",
            "main",
            auth_token_secret="TOKEN",
            checksum="0123abcd",
            skip_submodules=True,
            mtime="commit",
            fetch_by_commit=True,
        )
    )
    attrs = op.body["attrs"]
    assert attrs["git.authtokensecret"] == "TOKEN"
    assert attrs["git.checksum"] == "0123abcd"
    assert attrs["git.skipsubmodules"] == "true"
    assert attrs["git.mtime"] == "commit"
    assert attrs["git.fetchbycommit"] == "true"
    assert {
        caps.SOURCE_GIT_HTTP_AUTH,
        caps.SOURCE_GIT_CHECKSUM,
        caps.SOURCE_GIT_SKIP_SUBMODULES,
        caps.SOURCE_GIT_MTIME,
        caps.SOURCE_GIT_FETCH_BY_COMMIT,
    } <= op.metadata.caps


@pytest.mark.parametrize(
    "args, kwargs, error, fragment",
    [
        (("",), {}, llb.InvalidArgumentError, "git URL must be a non-empty string"),
        (("ftp://example.com/r.git",), {}, llb.InvalidReferenceError, "unsupported protocol 'ftp'"),
        (("https://example.com/r",), dict(known_ssh_hosts="x"), llb.InvalidArgumentError, "only apply to ssh"),
        (("https://example.com/r",), dict(mtime="now"), llb.InvalidArgumentError, "mtime"),
        (("https://example.com/r",), dict(checksum="xyz"), llb.InvalidArgumentError, "checksum"),
        (("https://example.com/r",), dict(fetch_by_commit=True), llb.InvalidArgumentError, "needs checksum"),
    ],
)
def test_git_errors(args, kwargs, error, fragment):
    with pytest.raises(error, match=fragment) as e:
        llb.git(*args, **kwargs)
    assert str(e.value).startswith("git: ")


def test_http_attrs_and_caps():
    op = source_of(
        llb.http(
            "https://example.com/a.tar.gz",
            checksum=D,
            filename="a.tgz",
            chmod=0o755,
            uid=1,
            gid=2,
            auth_header_secret="AUTH",
            accept="application/octet-stream",
            user_agent="llbkit",
        )
    )
    assert op.platform is None
    assert op.body["identifier"] == "https://example.com/a.tar.gz"
    assert op.body["attrs"] == {
        "http.checksum": D,
        "http.filename": "a.tgz",
        "http.perm": "0755",
        "http.uid": "1",
        "http.gid": "2",
        "http.authheadersecret": "AUTH",
        "http.header.accept": "application/octet-stream",
        "http.header.user-agent": "llbkit",
    }
    assert op.metadata.caps == {
        caps.SOURCE_HTTP,
        caps.SOURCE_HTTP_CHECKSUM,
        caps.SOURCE_HTTP_PERM,
        caps.SOURCE_HTTP_UID_GID,
        caps.SOURCE_HTTP_AUTH,
        caps.SOURCE_HTTP_HEADER,
    }


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(url="ftp://x/y"), "not an http:// or https:// URL"),
        (dict(url="https:///nohost"), "not an http"),
        (dict(url="https://x/y", filename="a/b"), "plain file name"),
        (dict(url="https://x/y", chmod=0o4755), "chmod"),
        (dict(url="https://x/y", uid=-1), "uid"),
        (dict(url="https://x/y", checksum="md5:abc"), "digest"),
    ],
)
def test_http_errors(kwargs, fragment):
    with pytest.raises(llb.LLBError, match=fragment) as e:
        llb.http(**kwargs)
    assert str(e.value).startswith("http: ")


def test_oci_layout():
    op = source_of(llb.oci_layout("foo@" + D, store_id="store", session_id="s", layer_limit=1, platform="linux/arm64"))
    assert op.body["identifier"] == "oci-layout://docker.io/library/foo@" + D
    assert op.body["attrs"] == {"oci.store": "store", "oci.session": "s", "oci.layerlimit": "1"}
    assert op.platform == llb.Platform("linux", "arm64")
    assert op.metadata.caps == {caps.SOURCE_OCI_LAYOUT}
    with pytest.raises(llb.InvalidReferenceError, match="oci_layout: reference 'foo:1' must be pinned by digest"):
        llb.oci_layout("foo:1")


def test_source_constraints_and_metadata():
    st = llb.image(
        "busybox",
        custom_name="pull busybox",
        ignore_cache=True,
        constraints=llb.Constraints.of(
            worker_constraints=["arch==amd64"],
            progress_group=llb.ProgressGroup("g", "Group"),
            description={"k": "v"},
        ),
    )
    op = source_of(st)
    assert op.worker_constraints == ("arch==amd64",)
    md = op.metadata
    assert md.ignore_cache
    assert md.custom_name == "pull busybox"
    assert dict(md.description) == {"llb.customname": "pull busybox", "k": "v"}
    assert md.progress_group == llb.ProgressGroup("g", "Group")
    # Metadata never changes the op's digest.
    assert op.digest == source_of(llb.image("busybox", constraints=llb.Constraints.of(worker_constraints=["arch==amd64"]))).digest
