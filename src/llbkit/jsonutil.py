"""Parse a JSON object or raise: the one check every reader of JSON documents makes.

Layouts, manifests, image configs and LLB metadata all arrive as bytes that must be a JSON object;
each stage raises its own error type (``error``), with the same two messages.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Union

__all__ = ["parse_json_object"]


def parse_json_object(data: Union[bytes, str], what: str,
                      error: Callable[[str], Exception] = ValueError, fix: str = "") -> Dict[str, Any]:
    """``data`` as a dict; ``error("<what> is not JSON: ...[; <fix>]")`` or ``error("<what> is
    not a JSON object[; <fix>]")`` otherwise."""
    tail = f"; {fix}" if fix else ""
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise error(f"{what} is not JSON: {e}{tail}") from None
    if not isinstance(doc, dict):
        raise error(f"{what} is not a JSON object{tail}")
    return doc
