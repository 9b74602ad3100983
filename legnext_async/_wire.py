"""Bytes a server wrote, made safe to keep: JSON read within a depth.

A hostile or broken server chooses these bytes. Python's parser recurses once per level of
nesting and gives up with a bare ``RecursionError`` near a thousand levels; a document it
does accept can still exhaust the stack later (a ``repr``, a walk of it). So :func:`loads`
refuses anything nested deeper than :data:`MAX_JSON_DEPTH`, as a ``ValueError`` like any
other unreadable body.
"""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = ["MAX_JSON_DEPTH", "loads"]

#: The deepest nesting of arrays and objects read. The API's own documents nest four or five
#: levels (a task's ``output.available_actions.upscale``); past this a body is malformed.
MAX_JSON_DEPTH: Final = 32

_TOO_DEEP: Final = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"


def loads(body: bytes) -> Any:
    """``json.loads(body)``; a document nested deeper than :data:`MAX_JSON_DEPTH` is a
    ``ValueError``, as a syntax error is, never a ``RecursionError``."""
    try:
        value = json.loads(body)
    except RecursionError:
        raise ValueError(_TOO_DEEP) from None
    # Fewer brackets than the limit cannot nest past it: the usual answer costs two counts.
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _nests_deeper(value):
        raise ValueError(_TOO_DEEP)
    return value


def _nests_deeper(value: object) -> bool:
    """Whether ``value`` nests deeper than :data:`MAX_JSON_DEPTH`, walked level by level (no
    recursion, so any depth json accepted is measured)."""
    level = [value]
    for _ in range(MAX_JSON_DEPTH):
        below: list[object] = []
        for node in level:
            if isinstance(node, dict):
                below.extend(child for child in node.values() if isinstance(child, dict | list))
            elif isinstance(node, list):
                below.extend(child for child in node if isinstance(child, dict | list))
        if not below:
            return False
        level = below
    return True
