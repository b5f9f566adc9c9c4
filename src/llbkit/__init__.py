"""llbkit: compile container images to BuildKit LLB and build them on buildkitd workers.

Layers (a module imports only from its own layer or from layers listed before it; tests and
``llbkit.testutil`` may import anything):

1. shared, standard library only: ``errors``, ``platforms``, ``reference``, ``gojson``,
   ``jsonutil``, ``atomic``, ``wireformat`` -- each concept once, below every stage;
2. ``oci`` (OCI data and registries; standard library only, so ``llbkit push`` needs no grpc);
3. ``_proto`` and ``llb`` (the wire IR);
4. ``image`` (the typed IR: lowers to ``llb``, uses ``oci``'s image config, never ``buildkit``);
5. ``buildkit`` (backends: client, session, pool; may use ``llb`` and ``oci``);
6. ``builder`` and ``cli`` (orchestration and edges: the only places that read ``os.environ``
   on the user's behalf, when a lower API is not given an ``env``).
"""

import os as _os

__version__ = "0.1.0"

# gRPC's fork handlers (on by default in grpcio) run at every fork() of the process, including
# the fork+exec of a subprocess, and abort the whole process ("Check failed: is_forking !=
# was_forking") when another thread is inside a gRPC call at that moment. llbkit's clients run in
# threads next to code that starts subprocesses (Pants runs processes while images solve), and
# no child of ours uses gRPC after a fork, so the handlers are off unless the user asks for them.
# This must happen before grpc is first imported; llbkit's modules import it only after this.
_os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
