"""llbkit: compile container images to BuildKit LLB and build them on buildkitd workers."""

import os as _os

__version__ = "0.1.0"

# gRPC's fork handlers (on by default in grpcio) run at every fork() of the process, including
# the fork+exec of a subprocess, and abort the whole process ("Check failed: is_forking !=
# was_forking") when another thread is inside a gRPC call at that moment. llbkit's clients run in
# threads next to code that starts subprocesses (Pants runs processes while images solve), and
# no child of ours uses gRPC after a fork, so the handlers are off unless the user asks for them.
# This must happen before grpc is first imported; llbkit's modules import it only after this.
_os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
