"""A local emulator of the Legnext API, for testing code that talks to it.

::

    from legnext_async.emulator import Emulator, Fault

    async with Emulator(api_key="test-key", time_scale=0.01) as emu:
        emu.add_fault(Fault.answer_lost("POST /api/v1/inpaint"))
        ...  # point the client at emu.base_url

Also runnable: ``python -m legnext_async.emulator --port 8080``.
"""

from ._callbacks import CallbackRecord
from ._emulator import Emulator, make_app
from ._faults import Fault, FaultKind
from ._requests import RequestRecord
from ._snapshots import Balance, JobInfo

__all__ = [
    "Balance",
    "CallbackRecord",
    "Emulator",
    "Fault",
    "FaultKind",
    "JobInfo",
    "RequestRecord",
    "make_app",
]

# Public objects present themselves as legnext_async.emulator.X, not as the private module
# that defines them; a new export gets this too.
for _name in __all__:
    _value = globals()[_name]
    if getattr(_value, "__module__", "").startswith(f"{__name__}._"):
        _value.__module__ = __name__
del _name, _value
