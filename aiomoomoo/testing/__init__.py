"""An OpenD simulator for testing code that talks to OpenD, aiomoomoo's or anyone's.

It speaks the real wire protocol over loopback TCP, so the official SDK and aiomoomoo both
connect to it unmodified::

    from aiomoomoo.testing import OpenDSimulator, Faults

    async with OpenDSimulator(faults=Faults(drop_after=5)) as sim:
        async with aiomoomoo.Client(sim.host, sim.port) as client:
            ...
"""

from ._data import load_histories
from ._faults import Faults
from ._history import (
    BUILTIN_PROFILES,
    DEFAULT_AS_OF,
    HkRow,
    SymbolProfile,
    UsRow,
    generate_history,
)
from ._publication import NO_PUBLICATION_LAG, PUBLICATION_LAGS
from ._simulator import OpenDSimulator
from ._stats import Limits, Quota, SimulatorStats
from ._texts import Lang
from ._thread import SimulatorThread

__all__ = [
    # The simulator
    "OpenDSimulator",
    "SimulatorThread",
    "Faults",
    "Quota",
    "Limits",
    "Lang",
    "SimulatorStats",
    # Its data
    "BUILTIN_PROFILES",
    "DEFAULT_AS_OF",
    "NO_PUBLICATION_LAG",
    "PUBLICATION_LAGS",
    "HkRow",
    "SymbolProfile",
    "UsRow",
    "generate_history",
    "load_histories",
]
