"""Entitlements: the privileges a run step asks of buildkitd beyond its sandbox.

``run(..., network="host")`` needs ``network.host`` and ``run(..., security="insecure")`` needs
``security.insecure``. buildkitd grants them only when the daemon allows them
(``--allow-insecure-entitlement``) *and* the solve request lists them, so a user enables them
explicitly, once per machine (the Pants backend: ``[buildkit].entitlements``). Checking an image
against what is enabled before anything is solved turns the daemon's late refusal into an error
naming the image, the step and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Tuple

from llbkit.image.errors import ImageSpecError
from llbkit.image.spec import ImageSpec, RunStep, image_graph

__all__ = ["NETWORK_HOST", "SECURITY_INSECURE", "ENTITLEMENTS", "EntitlementUse", "required_entitlements",
           "check_entitlements", "MissingEntitlementError", "parse_entitlements"]

NETWORK_HOST = "network.host"
SECURITY_INSECURE = "security.insecure"
ENTITLEMENTS = (NETWORK_HOST, SECURITY_INSECURE)


class MissingEntitlementError(ImageSpecError):
    """A run step needs an entitlement that is not enabled (``entitlement`` says which)."""

    def __init__(self, message: str, *, entitlement: str, **fields: object) -> None:
        super().__init__(message, **fields)  # type: ignore[arg-type]
        self.entitlement = entitlement


@dataclass(frozen=True)
class EntitlementUse:
    """One run step of image ``spec_name`` that needs ``entitlement``: its ``field`` (e.g.
    ``steps[2].network``) and ``value`` (``host`` / ``insecure``)."""

    entitlement: str
    spec_name: str
    field: str
    value: str


def required_entitlements(spec: ImageSpec) -> Tuple[EntitlementUse, ...]:
    """Every use of an entitlement in ``spec`` and in the images solved with it, in step order."""
    out: List[EntitlementUse] = []
    for s in image_graph(spec):
        for i, step in enumerate(s.steps):
            if not isinstance(step, RunStep):
                continue
            if step.network == "host":
                out.append(EntitlementUse(NETWORK_HOST, s.name, f"steps[{i}].network", "host"))
            if step.security == "insecure":
                out.append(EntitlementUse(SECURITY_INSECURE, s.name, f"steps[{i}].security", "insecure"))
    return tuple(out)


def parse_entitlements(values: Iterable[str], *, where: str = "entitlements") -> Tuple[str, ...]:
    """Check a list of entitlement names (sorted, each once); ``ValueError`` naming the bad one."""
    out = []
    for v in values:
        if v not in ENTITLEMENTS:
            raise ValueError(f"{where}: unknown entitlement {v!r}: choose from {', '.join(ENTITLEMENTS)}")
        if v not in out:
            out.append(v)
    return tuple(sorted(out))


def check_entitlements(spec: ImageSpec, enabled: Iterable[str], *, how_to_enable: str = "") -> Tuple[str, ...]:
    """The entitlements ``spec`` needs (sorted); :class:`MissingEntitlementError` for the first
    step needing one not in ``enabled``. ``how_to_enable`` is the fix the message ends with
    (``{entitlement}`` is replaced), e.g. "add '{entitlement}' to [buildkit].entitlements"."""
    enabled = set(enabled)
    needed = []
    for use in required_entitlements(spec):
        if use.entitlement not in enabled:
            fix = (how_to_enable or "enable the {entitlement} entitlement for the solve (buildctl: "
                   "--allow {entitlement}) on a daemon that allows it").format(entitlement=use.entitlement)
            fix += f"; or drop {use.field.rsplit('.', 1)[1]}={use.value!r}"
            problem = f"this run needs the {use.entitlement} entitlement, which is not enabled:"
            raise MissingEntitlementError(
                f"{use.spec_name}: field {use.field!r}: {problem} {use.value!r}: {fix}",
                entitlement=use.entitlement, spec_name=use.spec_name, field=use.field, value=use.value,
                problem=problem, fix=fix)
        if use.entitlement not in needed:
            needed.append(use.entitlement)
    return tuple(sorted(needed))
