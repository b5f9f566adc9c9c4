"""Solve jobs as files (no daemon): a round trip through a directory, the same bytes in every
Python process (what a Pants cache key sees), and clear errors for a damaged job directory."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

from llbkit.builder.job import JOB_FILE, ExportOptions, FrontendCall, JobError, JobPlatform, SolveJob
from llbkit.image import (
    CacheMount,
    ContextSource,
    CopyStep,
    ImageSpec,
    RegistryBase,
    ResolvedBase,
    RunStep,
    SecretMount,
    plan,
)
from llbkit.testutil.procs import child_python_env

BASE = "registry.example:5000/library/busybox:1.36"
BASE_DIGEST = "sha256:" + "ab" * 32


def sample_job() -> SolveJob:
    """A job with every kind of content: two platforms, a pinned base with a config, a build
    context, env/labels/ports/volumes (dicts and sets in some implementations), secrets."""
    base_config = {"architecture": "amd64", "os": "linux",
                   "config": {"Env": ["PATH=/bin", "Z=1", "A=2"], "Labels": {"z": "1", "a": "2", "m": "3"},
                              "ExposedPorts": {"9090/tcp": {}, "22/tcp": {}}}}
    spec = ImageSpec(
        name="//app:img", base=RegistryBase(BASE),
        steps=(CopyStep(ContextSource("context", "app"), "/srv/", chmod="0644"),
               RunStep("cat /run/secrets/token > /dev/null; echo ok > /srv/ok",
                       mounts=(CacheMount("/root/.cache"),),
                       secrets=(SecretMount("token", required=True), SecretMount("npmrc")))),
        env=(("ZED", "1"), ("ALPHA", "2"), ("MID", "3")), workdir="/srv", user="1000:1000",
        entrypoint=("/bin/sh", "-c"), cmd=("echo hi",),
        labels=(("org.z", "z"), ("org.a", "a"), ("org.m", "m")),
        annotations=(("org.opencontainers.image.title", "app"),),
        exposed_ports=("8080/tcp", "53/udp", "443"), volumes=("/data", "/cache", "/b"),
        platforms=("linux/arm64", "linux/amd64"),
    )
    bases = {(spec.base.normalized, p): ResolvedBase(dict(base_config, architecture=p.split("/")[1]), BASE_DIGEST)
             for p in spec.platforms}
    lowered = plan(spec, base_configs=bases, context_digest="sha256:" + "cd" * 32, source_date_epoch=0)
    export = ExportOptions(ref_names=("1.0", "latest"), record_tags=("example/app:1.0", "example/app:latest"),
                           annotations=(("org.opencontainers.image.title", "app"), ("a", "b")))
    return SolveJob.of("//app:img", lowered, export, secrets=[("token", True), ("npmrc", False)],
                       has_context=True)


def _write(files: Dict[str, bytes], d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (d / name).write_bytes(data)
    return d


def test_files_round_trip_through_a_directory(tmp_path: Path) -> None:
    job = sample_job()
    files = job.files()
    assert sorted(files) == sorted(["0.pb", "0.config.json", "0.base-config.json", "1.pb", "1.config.json",
                                    "1.base-config.json", JOB_FILE])
    loaded = SolveJob.load(_write(files, tmp_path / "job"))
    assert loaded == job
    # the base's config goes with each platform: the exporter keeps the base's layers by it
    assert json.loads(loaded.platforms[0].base_config)["architecture"] == "arm64"
    assert [p.platform for p in loaded.platforms] == ["linux/arm64", "linux/amd64"]  # index order kept
    assert loaded.secrets == (("npmrc", False), ("token", True))  # ids only, sorted
    assert loaded.export.ref_names == ("1.0", "latest") and loaded.has_context
    assert loaded.files() == files
    # what the job pins: the base by digest, in the definition itself; no secret value anywhere
    assert BASE_DIGEST.encode() in files["0.pb"]
    doc = json.loads(files[JOB_FILE])
    assert doc["platforms"][1] == {"platform": "linux/amd64", "definition": "1.pb", "config": "1.config.json",
                                   "base_config": "1.base-config.json"}
    assert json.loads(files["1.config.json"])["architecture"] == "amd64"


def frontend_job() -> SolveJob:
    """A Dockerfile job: two platforms run BuildKit's Dockerfile frontend, with a named context
    from another image's LLB (an input), and read the local dirs context and dockerfile."""
    from llbkit import llb

    base = llb.image("docker.io/library/busybox@sha256:" + "ab" * 32).marshal().to_bytes()
    calls = [FrontendCall("dockerfile.v0", (("target", "app"), ("build-arg:V", "1"), ("platform", p),
                                            ("context:base", "input:base")), (("base", base),))
             for p in ("linux/amd64", "linux/arm64")]
    return SolveJob("//app:df", tuple(JobPlatform(c.opts["platform"], b"", b"", frontend=c) for c in calls),
                    ExportOptions(ref_names=("1",)), secrets=(("token", False),),
                    local_dirs=("dockerfile", "context"), oci_layouts=("lib",))


def test_a_frontend_job_round_trips_and_its_options_are_in_its_files(tmp_path: Path) -> None:
    job = frontend_job()
    files = job.files()
    assert sorted(files) == sorted(["0.pb", "0.config.json", "0.input-0.pb", "1.pb", "1.config.json",
                                    "1.input-0.pb", JOB_FILE])
    loaded = SolveJob.load(_write(files, tmp_path / "job"))
    assert loaded == job and loaded.files() == files
    assert loaded.local_dirs == ("context", "dockerfile") and loaded.has_context  # context is a local dir
    assert loaded.oci_layouts == ("lib",)
    call = loaded.platforms[1].frontend
    assert call is not None and call.name == "dockerfile.v0"
    assert call.opts == {"build-arg:V": "1", "context:base": "input:base", "platform": "linux/arm64",
                         "target": "app"}
    assert dict(call.inputs)["base"] == files["1.input-0.pb"]
    # the options are the content key: another build arg gives other job files
    other = FrontendCall("dockerfile.v0", tuple(dict(call.attrs, **{"build-arg:V": "2"}).items()), call.inputs)
    changed = SolveJob(job.name, (job.platforms[0], JobPlatform("linux/arm64", b"", b"", frontend=other)),
                       job.export, job.secrets, local_dirs=job.local_dirs, oci_layouts=job.oci_layouts)
    assert changed.files()[JOB_FILE] != files[JOB_FILE]
    # the order options are given in does not matter
    shuffled = FrontendCall(call.name, tuple(reversed(call.attrs)), call.inputs)
    assert shuffled == call
    # entitlements its source needs are kept, and only written when there are some
    assert "entitlements" not in files[JOB_FILE].decode()
    entitled = FrontendCall(call.name, call.attrs, call.inputs, entitlements=("network.host",))
    ejob = SolveJob(job.name, (job.platforms[0], JobPlatform("linux/arm64", b"", b"", frontend=entitled)),
                    job.export, job.secrets, local_dirs=job.local_dirs, oci_layouts=job.oci_layouts)
    reloaded = SolveJob.load(_write(ejob.files(), tmp_path / "entitled"))
    assert reloaded.platforms[1].frontend.entitlements == ("network.host",) and reloaded == ejob


def test_a_frontend_option_given_twice_is_an_error() -> None:
    with pytest.raises(JobError, match="option 'target' is given twice"):
        FrontendCall("dockerfile.v0", (("target", "a"), ("target", "b")))


def test_has_context_and_local_dirs_agree() -> None:
    job = SolveJob("//a:b", (), ExportOptions(), has_context=True)
    assert job.local_dirs == ("context",) and job.has_context
    assert SolveJob("//a:b", (), ExportOptions(), local_dirs=("context",)).has_context
    assert not SolveJob("//a:b", (), ExportOptions(), local_dirs=("dockerfile",)).has_context


def test_export_options_round_trip() -> None:
    export = ExportOptions("docker", docker_tags=("app:1",), record_tags=("app:1",),
                           annotations=(("k", "v"),), source_date_epoch=1700000000)
    assert ExportOptions.from_doc(json.loads(json.dumps(export.to_doc()))) == export


_CHILD = """
import json, sys
from llbkit.builder.job_test import sample_job
files = sample_job().files()
json.dump({k: v.hex() for k, v in sorted(files.items())}, sys.stdout)
"""


def test_files_are_byte_identical_across_processes_with_other_hash_seeds(tmp_path: Path) -> None:
    outs = []
    for seed in ("1", "2", "4242"):
        env = dict(child_python_env(), PYTHONHASHSEED=seed)
        res = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, timeout=120)
        assert res.returncode == 0, res.stderr.decode(errors="replace")
        outs.append({k: bytes.fromhex(v) for k, v in json.loads(res.stdout).items()})
    assert outs[0] == outs[1] == outs[2], "job files differ between Python processes: a cache key would too"
    assert outs[0] == sample_job().files()  # and this process's own
    digests = {k: hashlib.sha256(v).hexdigest() for k, v in outs[0].items()}
    assert len(set(digests.values())) == len(digests)  # distinct files, not all empty


def test_a_damaged_job_names_its_directory(tmp_path: Path) -> None:
    good = sample_job().files()
    cases = {
        "missing": None,
        "not-json": b"{not json",
        "not-an-object": b"[1, 2]",
        "wrong-schema": json.dumps(dict(json.loads(good[JOB_FILE]), schema="llbkit.solve-job.v0")).encode(),
        "no-export": json.dumps({k: v for k, v in json.loads(good[JOB_FILE]).items() if k != "export"}).encode(),
    }
    for name, content in cases.items():
        d = tmp_path / name
        d.mkdir()
        if content is not None:
            _write(dict(good, **{JOB_FILE: content}), d)
        with pytest.raises(JobError) as e:
            SolveJob.load(d)
        assert str(d) in str(e.value) and "missing or damaged" in str(e.value), name
    # a definition file named by job.json but absent
    d = _write({k: v for k, v in good.items() if k != "1.pb"}, tmp_path / "no-definition")
    with pytest.raises(JobError, match="1.pb"):
        SolveJob.load(d)
