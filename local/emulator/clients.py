"""Build real google-cloud-* GAPIC clients that talk REST to an emulator (tests, tools)."""

from __future__ import annotations

from typing import Any


def make_emulator_client(client_class: type, emulator: Any, **kwargs: Any) -> Any:
    """`client_class` (e.g. scheduler_v1.CloudSchedulerClient) with transport="rest",
    AnonymousCredentials and `api_endpoint` = the emulator's URL (an Emulator or a URL str)."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials

    url = emulator if isinstance(emulator, str) else emulator.url
    return client_class(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options=ClientOptions(api_endpoint=url),
        **kwargs,
    )
