"""``python -m legnext_async``: the ``legnext`` command (see :mod:`legnext_async.cli`)."""

from __future__ import annotations

import sys

from .cli import main
from .cli._demo import demo

__all__ = ["demo", "main"]

if __name__ == "__main__":
    sys.exit(main())
