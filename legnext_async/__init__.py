"""An asyncio client for the Legnext API."""

from ._version import __version__

__all__ = ["__version__"]
