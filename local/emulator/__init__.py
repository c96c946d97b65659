"""The strict control-plane REST emulator (`vertex_cron_local.emulator`).

    from vertex_cron_local.emulator import Emulator
    with Emulator() as emu:          # http://127.0.0.1:PORT, real REST paths and JSON
        ...

See server.py for the HTTP/control surface, faults.py for fault rules, and the service
modules (vertex.py, scheduler.py, functions.py) for what each API does.
"""

from .clients import make_emulator_client
from .common import ApiError
from .faults import FaultInjector, FaultRule
from .server import CERTS_PATH, Emulator

__all__ = ["ApiError", "CERTS_PATH", "Emulator", "FaultInjector", "FaultRule", "make_emulator_client"]
