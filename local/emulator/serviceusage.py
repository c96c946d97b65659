"""Service Usage v1: which APIs a project has enabled.

`GET /v1/projects/P/services` (`filter` = `state:ENABLED` / `state:DISABLED` / empty,
`pageSize`, `pageToken`) and `GET /v1/projects/P/services/NAME`, like the real API: names
use the project number (`projects/123/services/run.googleapis.com`), and the catalogue is
every API vertex-cron needs plus any other enabled one. Tests enable APIs with
`enable_services(project, *names)`.
"""

from __future__ import annotations

from typing import Any

from .common import invalid, not_found, page, project_number
from .routing import Request, Route
from .store import Store

_FILTERS = {"": None, "state:ENABLED": "ENABLED", "state:DISABLED": "DISABLED"}


def _catalogue() -> list[str]:
    from vertex_cron.permissions import REQUIRED_APIS

    return [api for api, _ in REQUIRED_APIS]


class ServiceUsage:
    """Service Usage v1 over the emulator's store: the APIs each project has enabled."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._enabled = store.collection("enabledServices")  # project -> [API names]

    def routes(self) -> list[Route]:
        parent = r"/v1/projects/(?P<project>[^/:]+)/services"
        return [
            Route("GET", parent, self._services_list, ("filter", "pageSize", "pageToken")),
            Route("GET", rf"{parent}/(?P<service>[^/:]+)", self._services_get),
        ]

    def enable_services(self, project: str, *names: str) -> None:
        with self.store.lock:
            enabled = self._enabled.setdefault(project, [])
            enabled.extend(n for n in names if n not in enabled)
            self.store.touch()

    def _service(self, project: str, name: str) -> dict[str, Any]:
        number = project_number(project)
        with self.store.lock:
            enabled = name in self._enabled.get(project, [])
        return {
            "name": f"projects/{number}/services/{name}",
            "parent": f"projects/{number}",
            "config": {"name": name, "title": name.split(".", 1)[0]},
            "state": "ENABLED" if enabled else "DISABLED",
        }

    def _services_list(self, req: Request, project: str) -> Any:
        text = (req.query.get("filter") or [""])[0].strip()
        if text not in _FILTERS:
            raise invalid(f"Invalid filter: {text!r}; supported: state:ENABLED, state:DISABLED.")
        with self.store.lock:
            names = sorted(set(_catalogue()) | set(self._enabled.get(project, [])))
        services = [s for s in (self._service(project, n) for n in names) if _FILTERS[text] in (None, s["state"])]
        return {
            "services": [],
            **page("services", services, req.query, key=f"services|{project}|{text}", default_size=50),
        }

    def _services_get(self, req: Request, project: str, service: str) -> Any:
        if "." not in service:
            raise not_found(f"Service {service} not found or permission denied.")
        return self._service(project, service)
