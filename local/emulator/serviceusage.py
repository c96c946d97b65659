"""Service Usage v1: which APIs a project has enabled.

`GET /v1/projects/P/services` (`filter` = `state:ENABLED` / `state:DISABLED` / empty,
`pageSize`, `pageToken`) and `GET /v1/projects/P/services/NAME`, like the real API: names
use the project number (`projects/123/services/run.googleapis.com`), and the catalogue is
every API vertex-cron needs plus any other enabled one. Tests flip state with
`enable_services(project, *names)` and `disable_service(project, name)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .common import invalid, not_found, page, project_number

if TYPE_CHECKING:
    from .server import Request

_FILTERS = {"": None, "state:ENABLED": "ENABLED", "state:DISABLED": "DISABLED"}


def _catalogue() -> list[str]:
    from vertex_cron.permissions import REQUIRED_APIS

    return [api for api, _ in REQUIRED_APIS]


class ServiceUsageMixin:
    _state: dict[str, Any]
    _lock: Any

    def _serviceusage_routes(self) -> list[tuple[str, str, Any, set[str], str | None]]:
        parent = r"/v1/projects/(?P<project>[^/:]+)/services"
        return [
            ("GET", parent, self._services_list, {"filter", "pageSize", "pageToken"}, None),
            ("GET", rf"{parent}/(?P<service>[^/:]+)", self._services_get, set(), None),
        ]

    def enable_services(self, project: str, *names: str) -> None:
        with self._lock:
            enabled = self._state["enabledServices"].setdefault(project, [])
            enabled.extend(n for n in names if n not in enabled)
            self._touch()  # type: ignore[attr-defined]

    def disable_service(self, project: str, name: str) -> None:
        with self._lock:
            enabled = self._state["enabledServices"].get(project, [])
            if name in enabled:
                enabled.remove(name)
            self._touch()  # type: ignore[attr-defined]

    def _service(self, project: str, name: str) -> dict[str, Any]:
        number = project_number(project)
        with self._lock:
            enabled = name in self._state["enabledServices"].get(project, [])
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
        with self._lock:
            names = sorted(set(_catalogue()) | set(self._state["enabledServices"].get(project, [])))
        services = [s for s in (self._service(project, n) for n in names) if _FILTERS[text] in (None, s["state"])]
        chunk, token = page(services, req.query, key=f"services|{project}|{text}", default_size=50)
        return {"services": chunk, **({"nextPageToken": token} if token else {})}

    def _services_get(self, req: Request, project: str, service: str) -> Any:
        if "." not in service:
            raise not_found(f"Service {service} not found or permission denied.")
        return self._service(project, service)
