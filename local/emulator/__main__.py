"""`python -m vertex_cron_local.emulator`: run the emulators in the foreground.

    python -m vertex_cron_local.emulator --port 8085 --state-dir .vertex-cron-local/emulator \
        [--storage-port 9023] [--latency 0.05] [--oidc]

Prints the environment to point clients at it (first lines of stdout, flushed):

    VERTEX_CRON_EMULATOR_HOST=http://127.0.0.1:8085
    STORAGE_EMULATOR_HOST=http://127.0.0.1:9023        (unless --no-storage)
    VERTEX_CRON_OIDC_CERTS_URL=http://127.0.0.1:8085/oauth2/v1/certs   (with --oidc)

then serves until SIGINT/SIGTERM. Faults can be injected from another process with
POST {url}/_emulator/faults (see faults.py).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from .iam import CERTS_PATH
from .server import Emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vertex_cron_local.emulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="control-plane port (0 = any free port)")
    parser.add_argument("--state-dir", default=None, help="persist state here (JSON), reloaded at start")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds slept on every API call")
    parser.add_argument("--pipeline-pending-seconds", type=float, default=0.5)
    parser.add_argument("--pipeline-running-seconds", type=float, default=1.0)
    parser.add_argument("--function-deploy-seconds", type=float, default=0.3)
    parser.add_argument("--storage-port", type=int, default=0, help="Cloud Storage emulator port (0 = any)")
    parser.add_argument("--no-storage", action="store_true", help="do not start the Cloud Storage emulator")
    parser.add_argument(
        "--bucket", action="append", default=[], help="create this bucket in the storage emulator (repeatable)"
    )
    parser.add_argument(
        "--oidc", action="store_true", help="serve a fresh local OIDC issuer's certs at /oauth2/v1/certs"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s"
    )

    emulator = Emulator(
        state_dir=args.state_dir,
        latency_seconds=args.latency,
        port=args.port,
        host=args.host,
        pipeline_pending_seconds=args.pipeline_pending_seconds,
        pipeline_running_seconds=args.pipeline_running_seconds,
        function_deploy_seconds=args.function_deploy_seconds,
    )
    if args.oidc:
        from vertex_cron_local.token_issuer import LocalIssuer

        emulator.oidc_issuer = LocalIssuer()
    storage: Any = None
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    emulator.start()
    try:
        print(f"VERTEX_CRON_EMULATOR_HOST={emulator.url}")
        if not args.no_storage:
            from vertex_cron_local.storage import StorageEmulator

            storage = StorageEmulator(port=args.storage_port, host=args.host)
            storage.start()
            for bucket in args.bucket:
                storage.create_bucket(bucket)
            print(f"STORAGE_EMULATOR_HOST={storage.url}")
        if args.oidc:
            print(f"VERTEX_CRON_OIDC_CERTS_URL={emulator.url}{CERTS_PATH}")
        sys.stdout.flush()
        stop.wait()
    finally:
        if storage is not None:
            storage.stop()
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
