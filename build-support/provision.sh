#!/usr/bin/env bash
# Provision the development BuildKit environment. Idempotent: each step is skipped when done.
#
#   build-support/provision.sh          provision what is missing (needs root and Go)
#   build-support/provision.sh --check  exit 0 when everything is there, 1 otherwise (prints what is missing)
#   build-support/provision.sh --print  print the commands that would provision this machine
#
# What it provides:
#   - buildkitd and buildctl v0.32.2, built with `go install` into $LLBKIT_CACHE/buildkit-v0.32.2/bin
#   - Debian packages: runc, qemu-user-static + binfmt-support (qemu-aarch64 registered with flag F),
#     docker-registry, skopeo, umoci, openssl, apache2-utils (htpasswd)
#   - busybox-static .debs for amd64 and arm64 in $LLBKIT_CACHE/debs (tiny base images for tests)
#   - Debian's python3 and its dependency closure, amd64 and arm64, in $LLBKIT_CACHE/debs/python3-ARCH
#     (the python3 base image of testprojects/, see src/llbkit/testutil/testregistry.py)
#   - BuildGrid $BUILDGRID_VERSION (a REAPI cache server, for the remote-cache tests) in a virtualenv at
#     $LLBKIT_CACHE/buildgrid-$BUILDGRID_VERSION, from PyPI, on CPython 3.13 (3.10+ works)
set -euo pipefail

BUILDKIT_VERSION="v0.32.2"
BUILDGRID_VERSION="0.9.1"
cache="${LLBKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llbkit}"
bk_bin="$cache/buildkit-$BUILDKIT_VERSION/bin"
debs="$cache/debs"
bgd="$cache/buildgrid-$BUILDGRID_VERSION/bin/bgd"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
apt_packages=(runc qemu-user-static binfmt-support docker-registry skopeo umoci openssl apache2-utils busybox-static openssh-client)

log() { printf '[llbkit provision] %s\n' "$*" >&2; }

missing() {
  local out=()
  [ -x "$bk_bin/buildkitd" ] || out+=("buildkitd $BUILDKIT_VERSION")
  [ -x "$bk_bin/buildctl" ] || out+=("buildctl $BUILDKIT_VERSION")
  local p
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || out+=("debian package $p")
  done
  [ -f "$debs/busybox-static_amd64.deb" ] || out+=("busybox-static amd64 .deb")
  [ -f "$debs/busybox-static_arm64.deb" ] || out+=("busybox-static arm64 .deb")
  [ -f "$debs/python3-amd64/packages.txt" ] || out+=("python3 amd64 .debs")
  [ -f "$debs/python3-arm64/packages.txt" ] || out+=("python3 arm64 .debs")
  binfmt_ok || out+=("qemu-aarch64 binfmt registration (flag F)")
  [ -x "$bgd" ] || out+=("BuildGrid $BUILDGRID_VERSION (bgd)")
  printf '%s\n' "${out[@]+"${out[@]}"}"
}

binfmt_ok() {
  local f=/proc/sys/fs/binfmt_misc/qemu-aarch64
  [ -f "$f" ] && grep -q '^enabled' "$f" && grep -q '^flags:.*F' "$f"
}

print_commands() {
  cat <<CMDS
# Run as root on Debian 12 with Go >= 1.26.3 on PATH:
apt-get update
apt-get install -y ${apt_packages[*]}
dpkg --add-architecture arm64 && apt-get update
mkdir -p $debs && cd $debs && apt-get download busybox-static:amd64 busybox-static:arm64
# python3 and its dependency closure, per architecture (from the repo root):
PYTHONPATH=src python3 -m llbkit.testutil.debian_debs $debs/python3-amd64 amd64 python3
PYTHONPATH=src python3 -m llbkit.testutil.debian_debs $debs/python3-arm64 arm64 python3
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64
python3.13 -m venv $cache/buildgrid-$BUILDGRID_VERSION && $cache/buildgrid-$BUILDGRID_VERSION/bin/pip install buildgrid==$BUILDGRID_VERSION
# buildkit's go.mod has exclude directives, so 'go install ...@$BUILDKIT_VERSION' refuses it;
# build it from a small wrapper module instead (what build-support/provision.sh does):
d=\$(mktemp -d) && cd \$d && go mod init llbkit.local/buildkit-tools && \\
  printf 'exclude (\\n\\tgithub.com/davecgh/go-spew v1.1.2-0.20180830191138-d8f796af33cc\\n\\tgithub.com/pmezard/go-difflib v1.0.1-0.20181226105442-5d4384ee4fb2\\n)\\n' >> go.mod && \\
  go get github.com/moby/buildkit/cmd/buildkitd@$BUILDKIT_VERSION github.com/moby/buildkit/cmd/buildctl@$BUILDKIT_VERSION && \\
  GOBIN=$bk_bin CGO_ENABLED=0 go install github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl
CMDS
}

case "${1:-}" in
  --check) m="$(missing)"; if [ -n "$m" ]; then printf 'missing: %s\n' $'\n'"$m" | sed 's/^/  /' >&2; exit 1; fi; exit 0 ;;
  --print) print_commands; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--check|--print]" >&2; exit 2 ;;
esac

if [ -z "$(missing)" ]; then
  exit 0
fi

# BuildGrid needs no root: install it first, so that it is there even where BuildKit cannot be.
if [ ! -x "$bgd" ]; then
  py=""
  for c in "${LLBKIT_PYTHON313:-}" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3.13 python3.13 python3.12 python3.11 python3.10; do
    if [ -n "$c" ] && command -v "$c" >/dev/null 2>&1; then py="$c"; break; fi
  done
  if [ -n "$py" ]; then
    log "installing BuildGrid $BUILDGRID_VERSION (REAPI cache server for tests) with $py"
    # A venv cannot be moved (its scripts name it by path): build it in place, and remove it
    # when the install fails, so that a half-made one is never taken for done.
    venv="$cache/buildgrid-$BUILDGRID_VERSION"
    rm -rf "$venv"
    mkdir -p "$cache"
    if ! { "$py" -m venv "$venv" && PIP_CONFIG_FILE=/dev/null "$venv/bin/pip" install -q \
             --disable-pip-version-check "buildgrid==$BUILDGRID_VERSION" && "$bgd" --help >/dev/null; }; then
      rm -rf "$venv"
      log "installing BuildGrid failed"; exit 1
    fi
  else
    log "no CPython >= 3.10 to install BuildGrid with (set LLBKIT_PYTHON313)"
  fi
  [ -z "$(missing)" ] && exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v go >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  log "cannot provision BuildKit here (needs root, apt-get and Go). Missing:"
  missing | sed 's/^/    /' >&2
  log "run these commands (as root), then try again:"
  print_commands >&2
  exit 3
fi

need_pkgs=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$p")
done
arm64_known=0
dpkg --print-foreign-architectures | grep -qx arm64 && arm64_known=1
python3_debs_missing() { [ ! -f "$debs/python3-amd64/packages.txt" ] || [ ! -f "$debs/python3-arm64/packages.txt" ]; }
if [ ${#need_pkgs[@]} -gt 0 ] || [ ! -f "$debs/busybox-static_arm64.deb" ] || [ ! -f "$debs/busybox-static_amd64.deb" ] \
   || python3_debs_missing; then
  if [ "$arm64_known" = 0 ]; then
    log "adding the arm64 Debian architecture (for busybox-static:arm64)"
    dpkg --add-architecture arm64
  fi
  log "apt-get update"
  apt-get update -qq
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
mkdir -p "$debs"
for arch in amd64 arm64; do
  if [ ! -f "$debs/busybox-static_$arch.deb" ]; then
    log "downloading busybox-static:$arch"
    tmp="$(mktemp -d)" && chmod 755 "$tmp"  # apt downloads as _apt
    (cd "$tmp" && apt-get download -qq "busybox-static:$arch" >/dev/null)
    mv "$tmp"/busybox-static_*.deb "$debs/busybox-static_$arch.deb.part"
    mv "$debs/busybox-static_$arch.deb.part" "$debs/busybox-static_$arch.deb"
    rm -rf "$tmp"
  fi
done

if python3_debs_missing; then
  # The closure is computed by a stdlib-only module of this repo; any Python >= 3.9 runs it.
  py=""
  for c in python3 python3.9 /usr/bin/python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
      py="$c"; break
    fi
  done
  [ -n "$py" ] || { log "no Python >= 3.9 to resolve python3's Debian dependencies"; exit 1; }
  for arch in amd64 arm64; do
    if [ ! -f "$debs/python3-$arch/packages.txt" ]; then
      log "downloading python3:$arch and its dependencies (the testprojects python3 base image)"
      PYTHONPATH="$root/src" "$py" -m llbkit.testutil.debian_debs "$debs/python3-$arch" "$arch" python3
    fi
  done
fi

if ! binfmt_ok; then
  log "registering qemu-aarch64 with binfmt_misc (arm64 emulation)"
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64 || true
  if ! binfmt_ok; then
    # update-binfmts registers from /usr/share/binfmts; fall back to importing it.
    update-binfmts --import qemu-aarch64 || true
  fi
  binfmt_ok || { log "qemu-aarch64 is not registered with flag F; arm64 emulation will not work"; exit 1; }
fi

if [ ! -x "$bk_bin/buildkitd" ] || [ ! -x "$bk_bin/buildctl" ]; then
  log "building buildkitd and buildctl $BUILDKIT_VERSION with go install (about 2-4 minutes)"
  mod="$(mktemp -d)"
  trap 'rm -rf "$mod"' EXIT
  (
    cd "$mod"
    go mod init llbkit.local/buildkit-tools >/dev/null 2>&1
    # Mirror buildkit's own exclude directives: 'go install pkg@version' refuses modules that have
    # them, so we build from this wrapper module, which selects the same dependency versions.
    cat >> go.mod <<'GOMOD'

exclude (
	github.com/davecgh/go-spew v1.1.2-0.20180830191138-d8f796af33cc
	github.com/pmezard/go-difflib v1.0.1-0.20181226105442-5d4384ee4fb2
)
GOMOD
    # Getting the two commands (not just the module) records go.sum entries for all they import.
    go get "github.com/moby/buildkit/cmd/buildkitd@$BUILDKIT_VERSION" "github.com/moby/buildkit/cmd/buildctl@$BUILDKIT_VERSION" 2>&1 | grep -v '^go: downloading' >&2 || true
    mkdir -p "$bk_bin.part"
    GOBIN="$bk_bin.part" CGO_ENABLED=0 go install github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl
  )
  mkdir -p "$bk_bin"
  mv "$bk_bin.part/buildkitd" "$bk_bin.part/buildctl" "$bk_bin/"
  rmdir "$bk_bin.part"
fi
log "BuildKit environment ready: $bk_bin"
