"""The `container_image` target and its fields.

Field aliases mirror the OCI image config (`entrypoint`, `cmd`, `env`, `workdir`, `user`,
`labels`, `exposed_ports`, ...). Help text is user documentation: what a field does, an example,
and the ordering rules that matter.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any, Iterable, Optional, Tuple

from pants.core.goals.package import OutputPathField
from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    BoolField,
    Dependencies,
    DictStringToStringField,
    Field,
    InvalidFieldException,
    InvalidFieldTypeException,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.strutil import softwrap

from llbkit_pants.build_file_helpers import STEP_TYPES


class ContainerImageBaseField(StringField):
    alias = "base"
    required = True
    help = softwrap(
        """
        What the image starts from:

        * `"scratch"`: an empty filesystem;
        * a registry reference with a tag and/or a digest, e.g. `"docker.io/library/python:3.12-slim"`
          or `"python@sha256:..."`: a tag is pinned to a digest by the image's base-image
          lockfile (`pants generate-lockfiles --resolve=container-images`; see
          `[base-images]`), and the digest is what the build's cache key holds. The base's
          layers are kept in the image exactly as the registry serves them;
        * the address of another `container_image` target, e.g. `":base"` or `"//images/base"`:
          its build is composed directly under this one (no registry round trip).

        A registry or target base's config (Env, WorkingDir, User, Entrypoint, Cmd, ...) is
        inherited the way `docker build` inherits from `FROM`. Its ONBUILD triggers are cleared
        in this image's config, as Docker clears them; unlike `docker build`, they are not run
        (write what they would do as steps).
        """
    )


class ContainerImageStepsField(Field):
    alias = "steps"
    default: Tuple[Any, ...] = ()
    help = softwrap(
        """
        The build steps, applied in order on top of `base`. Use the BUILD-file helpers:

            steps=[
                copy(":bin", "/app/"),
                copy("config.yaml", "/etc/app/config.yaml", chmod="0644", chown="1000:1000"),
                run("apt-get update && apt-get install -y curl",
                    mounts=[cache_mount("/var/cache/apt", sharing="locked")]),
                run(["/app/bin.pex", "--selfcheck"], network="none", secrets=[secret_mount("token")]),
            ]

        `copy(source, dest)` takes a target address (its packaged output, or its `files`/
        `resources` sources) or a path relative to this BUILD file's directory owned by a
        `files`/`resources` target; a `dest` ending in `/` is a directory to copy into, and a
        relative `dest` is relative to `workdir`. A target's sources keep their paths relative to
        this BUILD file's directory: with `files(name="etc", sources=["etc/**"])`,
        `copy(":etc", "/")` gives `/etc/...` (and `copy(":etc", "/etc/")` gives `/etc/etc/...`).
        Dependencies are inferred from `copy()` sources, so they need not be listed again.

        `add(source, dest, checksum=, chmod=, chown=)` is Docker's `ADD`: a source that is an
        `http://` or `https://` URL is downloaded and needs its sha256 `checksum`, e.g.
        `add("https://example.com/tool-1.2.tar.gz", "/opt/", checksum="sha256:<64 hex>")` (the file
        is kept as it is, mode 0600 unless `chmod`, as Docker does); any other source is what
        `copy()` takes, but a tar archive (plain, gzip, bzip2 or xz) is unpacked into `dest`,
        keeping its entries' owners and modes unless `chown`/`chmod`, e.g.
        `add("vendor.tar.gz", "/opt/vendor/")`.

        `run(command, mounts=, secrets=, network=, security=)` takes a shell string (run with
        `/bin/sh -c`) or an argv list, run with the env, user and working directory in effect at
        that step.
        `network` is "default", "none" or "host"; `security` is "sandbox" (the default) or
        "insecure" (privileged). "host" and "insecure" need the `network.host` /
        `security.insecure` entitlement, which you enable explicitly with `[buildkit].entitlements`
        (an image using one without it fails before building, naming the step).

        Mounts (Docker's `RUN --mount=...`), each for one `run`:

        * `cache_mount(target, id=, sharing=, uid=, gid=, mode=, source=, path=)`: a cache kept by
          buildkitd between builds; `uid`/`gid`/`mode` set its directory's owner and mode when it
          is first made, e.g. `cache_mount("/home/app/.cache", uid=1000, gid=1000, mode=0o755)`;
          `source` seeds a new cache from another target's files at `path` (as `bind_mount`).
        * `bind_mount(source, target, path="/", readwrite=False)`: files at `target`, read-only,
          from another `container_image` target's filesystem (`path` in it), e.g.
          `bind_mount(":builder", "/build", path="/out")`, from a registry image pinned by digest
          (`"name@sha256:..."`), or from a target's files or a path as `copy()` takes them, e.g.
          `bind_mount(":sources", "/src")`. With `readwrite=True` a run may write there, and what
          it writes is discarded after the run (Docker's `rw`).
        * `secret_mount(id, target=, env=)`: a secret of `[buildkit].secrets` as a file
          (`/run/secrets/<id>` by default); `secret_env(name, id=)` sets the environment variable
          `name` to the secret instead, e.g. `run("./publish", secrets=[secret_env("API_TOKEN",
          id="token")])` (Docker's `--mount=type=secret,id=token,env=API_TOKEN`).
        * `ssh_mount(id="default", target=)`: the ssh agent `id` of `[buildkit].ssh` forwarded
          into the run, with `SSH_AUTH_SOCK` pointing at it, e.g.
          `run("git clone git@github.com:acme/private.git", mounts=[ssh_mount()])`; the keys never
          leave your machine.
        * `tmpfs_mount(target, size=)`: an in-memory directory.

        Modes: a copied file is 0755 if Pants knows it as executable and 0644 otherwise, and each
        directory copied is 0755 (whatever the modes where Pants stages the files). Symlinks
        in a package's output stay symlinks, as Docker copies them; symlinks in the workspace
        are followed by Pants, which snapshots their targets' contents (a deliberate difference:
        Pants 2.17 gives rules no way to read a link), and one whose target is absolute or
        leaves the repository is an error naming the link and its target. `chmod` is a string: octal
        (`chmod="0640"`, applied to every file and directory copied; the directories the copy
        creates above `dest` get it too, as BuildKit's Dockerfile frontend gives them) or
        symbolic (`chmod="u+x,go-w"`, applied to each one's mode; created parents are 0755). An
        int such as `chmod=755` is refused: Python reads it as decimal and cannot tell `0o755`
        from `493`, so write `"0755"`. Without `chown`, copied files belong to 0:0.

        Ordered instructions, as in a Dockerfile:

            steps=[
                run("adduser -D -u 1000 app"),             # as root
                set_user("app"),                          # USER app
                set_workdir("/home/app/work"),            # WORKDIR: created, owned by app
                set_env({"PATH": "/home/app/bin:$PATH"}), # ENV: $VAR expands
                copy(":bin", "bin/"),                     # relative to the working directory
                run("bin/app --selfcheck"),               # as app, in /home/app/work
            ]

        The top-level `env`, `user` and `workdir` fields are the simple form: they act as
        `set_env(env)`, `set_user(user)`, `set_workdir(workdir)` placed before all steps, in
        that order; later `set_*` steps change them, and the last values are the image
        config's. Values expand `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+value}`
        against the environment so far, the base image's included, in `set_env`/`env` values,
        `set_workdir`/`workdir`, `set_user`/`user`, `copy`/`copy_from`/`add` destinations,
        `chown`, `chmod` and mount targets; a backslash makes a `$` literal (`"\\\\$HOME"` in a BUILD
        file). As in a Dockerfile, one `set_env({...})` sees the environment before it for all
        its values, as one `ENV A=1 B=$A` line does.

        Multi-stage builds: `copy_from(image, source, dest, chmod=, chown=)` copies the absolute
        `source` path out of another image's filesystem, like Dockerfile `COPY --from`: `image`
        is the address of another `container_image` target (built for the same platform and
        composed directly, no registry) or a registry image pinned by digest:

            copy_from(":builder", "/out/app", "/usr/local/bin/app"),
            copy_from("docker.io/library/busybox@sha256:...", "/bin/busybox", "/bin/"),

        Files copied from an image keep their owners and modes unless `chown`/`chmod` say
        otherwise. `copy(":builder", ...)` of a `container_image` target is an error: use
        `copy_from`.

        Dependencies are also inferred from `copy_from()`, `add()` and mount sources.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[Iterable[Any]], address: Address) -> Tuple[Any, ...]:
        value = super().compute_value(raw_value, address)
        if value is None:
            return ()
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise InvalidFieldTypeException(
                address, cls.alias, value, expected_type="a list of copy(...) and run(...) steps"
            )
        steps = tuple(value)
        for i, step in enumerate(steps):
            if not isinstance(step, STEP_TYPES):
                raise InvalidFieldException(
                    f"The {repr(cls.alias)} field in target {address} has an invalid step at index "
                    f"{i}: {step!r}. Each step must be copy(...), copy_from(...), add(...), run(...), set_env(...), "
                    f'set_user(...) or set_workdir(...), e.g. copy(":bin", "/app/") or run("echo hello").'
                )
        return steps


class ContainerImageEnvField(DictStringToStringField):
    alias = "env"
    help = softwrap(
        """
        Environment variables set in the image config and for the `run` steps, e.g.
        `env={"PATH": "/app/bin:$PATH", "PORT": "8080"}`. They are added to (and override) the
        base image's Env; `$VAR` and `${VAR:-default}` expand against it. The same as a
        `set_env(...)` step before all steps (see `steps` for how the two combine).
        """
    )


class ContainerImageWorkdirField(StringField):
    alias = "workdir"
    help = softwrap(
        """
        The working directory for the steps and the image config's WorkingDir, e.g.
        `workdir="/app"`, created (0755, owned by `user`) as Dockerfile `WORKDIR` does; a
        relative one is joined onto the base's. Defaults to the base image's. The same as a
        `set_workdir(...)` step placed before all steps (after `env` and `user`).
        """
    )


class ContainerImageUserField(StringField):
    alias = "user"
    help = softwrap(
        """
        The user (and optionally group) that `run` steps and the container run as:
        `"name"`, `"uid"`, `"uid:gid"` or `"name:group"`, e.g. `user="1000:1000"`.
        Defaults to the base image's. The same as a `set_user(...)` step before all steps; to
        run setup as root and then switch to a user the steps create, use `set_user` there.
        """
    )


class ContainerImageEntrypointField(StringSequenceField):
    alias = "entrypoint"
    help = softwrap(
        """
        The image config's Entrypoint, as an argv list, e.g. `entrypoint=["/app/bin.pex"]`.
        Setting it clears a `cmd` inherited from the base image, as Docker does.
        """
    )


class ContainerImageCmdField(StringSequenceField):
    alias = "cmd"
    help = "The image config's Cmd (default arguments), as an argv list, e.g. `cmd=[\"serve\"]`."


class ContainerImageLabelsField(DictStringToStringField):
    alias = "labels"
    help = softwrap(
        """
        Labels in the image config, e.g.
        `labels={"org.opencontainers.image.source": "https://example.com/repo"}`.
        They are added to (and override) the base image's labels.
        """
    )


class ContainerImageAnnotationsField(DictStringToStringField):
    alias = "annotations"
    help = "OCI annotations on the image manifests and index, e.g. `annotations={\"org.opencontainers.image.version\": \"1.4.0\"}`."


class ContainerImageExposedPortsField(StringSequenceField):
    alias = "exposed_ports"
    help = "Ports the container listens on: `PORT` or `PORT/tcp|udp|sctp`, e.g. `exposed_ports=[\"8080/tcp\"]`."


class ContainerImageVolumesField(StringSequenceField):
    alias = "volumes"
    help = "Absolute paths declared as volumes in the image config, e.g. `volumes=[\"/data\"]`."


class ContainerImageStopSignalField(StringField):
    alias = "stop_signal"
    help = "The signal that stops the container, e.g. `stop_signal=\"SIGTERM\"` (a name or a number)."


class ContainerImagePlatformsField(StringSequenceField):
    alias = "platforms"
    help = softwrap(
        """
        The platforms to build, as `os/arch[/variant]`, e.g. `platforms=["linux/amd64", "linux/arm64"]`.
        One platform gives a one-platform image; several give one OCI index whose manifests are in
        this order. Defaults to `[buildkit].platforms`.
        """
    )


class ContainerImageCompletePlatformsField(DictStringToStringField):
    alias = "complete_platforms"
    help = softwrap(
        """
        The Python interpreter of each platform, for the `pex_binary` targets this image copies:
        a platform -> the address of a `file` target holding a pex complete platform (the JSON of
        `pex3 interpreter inspect --markers --tags`), e.g.
        `complete_platforms={"linux/arm64": "//3rdparty/platforms:debian12_py311_arm64"}`.

        Every PEX copied with `copy()` is built for each platform of the image, through the
        `pex_binary`'s own package rule (its lockfile, fields and caching), resolved for that
        platform's interpreter. A platform not listed here takes its interpreter from the image
        itself: the base image's `python3` is inspected on a worker of that platform (native or
        emulated) once per base digest, and the result cached. `image.json` (`copies`) and
        `pants peek` show which was used. A PEX whose requirements have no wheel for a
        platform is an error naming the target, the platform and the distribution.
        """
    )


class ContainerImageRepositoryField(StringField):
    alias = "repository"
    help = softwrap(
        """
        The repository name the image is published under, e.g. `repository="acme/app"`.
        Defaults to the target's path and name.
        """
    )


class ContainerImageTagsField(StringSequenceField):
    # Not `tags`: every Pants target already has a `tags` field (for filtering targets).
    alias = "image_tags"
    default = ("latest",)
    help = "The tags the image is published under in each registry, e.g. `image_tags=[\"1.4.0\", \"latest\"]`."


class ContainerImageRegistriesField(StringSequenceField):
    alias = "registries"
    help = softwrap(
        """
        The registries `pants publish` pushes to, as `HOST[:PORT]`, e.g.
        `registries=["registry.example.com", "mirror.example.com:5000"]`. Each gets the packaged
        image (same bytes and digests as `dist/`) as `REGISTRY/REPOSITORY:TAG` for every tag in
        `image_tags`. Credentials come from Docker's `config.json` (`DOCKER_CONFIG`, else
        `~/.docker`). `localhost` and `127.0.0.1` are spoken to over plain HTTP, others over HTTPS.
        Publishing an image without registries is an error (set `skip_push=True` to leave it out).
        """
    )


class ContainerImageOutputFormatField(StringField):
    alias = "output_format"
    default = "oci"
    valid_choices = ("oci", "docker")
    help = softwrap(
        """
        What `package` writes to `dist/`: `"oci"` (an OCI image layout tar with one index over
        all platforms) or `"docker"` (a `docker load`-compatible archive; one platform only).
        `publish` pushes the same bytes: the index of an OCI layout, or the one image manifest of
        a docker archive.
        """
    )


class ContainerImageSkipPushField(BoolField):
    alias = "skip_push"
    default = False
    help = softwrap(
        """
        If true, `pants publish` pushes nothing for this image (it is still packaged, and reported
        as skipped), e.g. for images only used as a `base` or only tested locally.
        """
    )


class ContainerImageOutputPathField(OutputPathField):
    help = softwrap(
        """
        Where `pants package` writes the image file, under `--distdir` (e.g. `dist/`); its
        `image.json` record goes beside it (the same name, with `.image.json` in place of
        `.oci.tar` / `.docker.tar`).

        Default: the BUILD file's directory, then the target name, then the parameters of a
        `parametrize`d target, so each variant has its own file: `src/app:img` is
        `src/app/img.oci.tar` (`img.docker.tar` with `output_format="docker"`), and
        `parametrize(platforms=...)` variants are `src/app/img@platforms=arm.oci.tar` and so on.
        """
    )

    def image_and_record_paths(self, output_format: str) -> Tuple[str, str]:
        """`(image path, image.json path)` under dist/."""
        ext = ".docker.tar" if output_format == "docker" else ".oci.tar"
        if self.value:
            image = self.value
            stem = image
            for suffix in (".oci.tar", ".docker.tar", ".tar"):
                if stem.endswith(suffix):
                    stem = stem[: -len(suffix)]
                    break
        else:
            address = self.address
            stem = posixpath.join(address.spec_path, address.target_name)
            if address.generated_name:
                stem += "-" + address.generated_name.replace("/", "_")
            if address.parameters:
                params = ",".join(f"{k}={v}" for k, v in sorted(address.parameters.items()))
                stem += "@" + re.sub(r"[^A-Za-z0-9._=,+-]", "_", params)
            image = stem + ext
        return image, stem + ".image.json"


class ContainerImageResolveField(StringField):
    alias = "resolve"
    help = softwrap(
        """
        The resolve (a base-image lockfile, see `[base-images].resolves`) that pins this image's
        registry bases, e.g. `resolve="legacy"`. Defaults to `[base-images].default_resolve`. Run
        `pants generate-lockfiles --resolve=NAME` after changing a base or `platforms`.
        """
    )


class ContainerImageDependenciesField(Dependencies):
    help = softwrap(
        """
        Extra dependencies. Those named by `base` and by `copy()` sources are inferred and need
        not be listed.
        """
    )


class ContainerImageTarget(Target):
    alias = "container_image"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        ContainerImageBaseField,
        ContainerImageStepsField,
        ContainerImageEnvField,
        ContainerImageWorkdirField,
        ContainerImageUserField,
        ContainerImageEntrypointField,
        ContainerImageCmdField,
        ContainerImageLabelsField,
        ContainerImageAnnotationsField,
        ContainerImageExposedPortsField,
        ContainerImageVolumesField,
        ContainerImageStopSignalField,
        ContainerImagePlatformsField,
        ContainerImageCompletePlatformsField,
        ContainerImageRepositoryField,
        ContainerImageTagsField,
        ContainerImageRegistriesField,
        ContainerImageOutputFormatField,
        ContainerImageSkipPushField,
        ContainerImageOutputPathField,
        ContainerImageResolveField,
        ContainerImageDependenciesField,
    )
    help = softwrap(
        """
        A container image built with BuildKit, without a Docker daemon.

            container_image(
                name="app",
                base="docker.io/library/python:3.12-slim",
                steps=[copy(":bin", "/app/"), run(["python3", "/app/bin.pex", "--selfcheck"])],
                env={"PORT": "8080"}, workdir="/app", user="1000:1000",
                entrypoint=["python3", "/app/bin.pex"], cmd=["serve"],
                platforms=["linux/amd64", "linux/arm64"],
                repository="acme/app", image_tags=["1.4.0", "latest"],
            )

        The fields are compiled to BuildKit LLB (one graph per platform) and solved on buildkitd
        workers (see `[buildkit]`); `pants package` writes an OCI layout (or docker archive) to
        `dist/`.
        """
    )
