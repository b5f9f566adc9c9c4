"""`import llbkit` turns gRPC's fork handlers off (unless the user set them), before grpc loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import llbkit

SRC = str(Path(llbkit.__file__).parent.parent)
PROBE = "import llbkit, os, sys; print(os.environ.get('GRPC_ENABLE_FORK_SUPPORT'), 'grpc' in sys.modules)"


def _probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "GRPC_ENABLE_FORK_SUPPORT"}
    clean.update(env, PYTHONPATH=SRC)
    return subprocess.run([sys.executable, "-c", PROBE], env=clean, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_fork_handlers_are_off_by_default_and_grpc_is_not_loaded_yet() -> None:
    assert _probe() == "false False"


def test_a_users_choice_is_kept() -> None:
    assert _probe(GRPC_ENABLE_FORK_SUPPORT="true") == "true False"
