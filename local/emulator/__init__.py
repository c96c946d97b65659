"""The strict control-plane REST emulator (`vertex_cron_local.emulator`).

    from vertex_cron_local.emulator import Emulator
    with Emulator() as emu:          # http://127.0.0.1:PORT, real REST paths and JSON
        ...

See server.py for the HTTP/control surface, store.py for the state every API shares,
faults.py for fault rules, and one module per API (vertex.py, scheduler.py, functions.py,
iam.py, resourcemanager.py, serviceusage.py, artifactregistry.py) for what each does.
"""

from .clients import make_emulator_client
from .common import ApiError
from .faults import FaultInjector, FaultRule
from .iam import CERTS_PATH
from .server import Emulator

__all__ = ["ApiError", "CERTS_PATH", "Emulator", "FaultInjector", "FaultRule", "make_emulator_client"]
