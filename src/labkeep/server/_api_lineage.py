"""What a run holds beyond its values, for the run page: its models (with the registry's
versions that point at them) and the artifact versions it used and produced, each with the
runs on the other end (who produced what it used; who used what it produced)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from labkeep.errors import NotFoundError
from labkeep.server._api_read import _json, _LabkeepErrorRoute, _record, _store, read

router = APIRouter(route_class=_LabkeepErrorRoute)


@router.get("/runs/{ref}/lineage", dependencies=read)
def run_lineage(request: Request, ref: str) -> Response:
    """``{"models": [...], "used": [...], "produced": [...]}`` of one run."""
    from labkeep._views import RunView
    from labkeep.models import list_models

    store = _store(request)
    view = RunView(store, _record(request, ref))
    numbers: dict[str, int | None] = {}

    def number(uuid: str) -> int | None:
        if uuid not in numbers:
            try:
                numbers[uuid] = store.resolve_run(uuid).number
            except NotFoundError:
                numbers[uuid] = None
        return numbers[uuid]

    registered = view.registered_models
    models = [
        {
            "name": info.name,
            "flavour": info.flavour,
            "safe": info.safe,
            "size": info.size,
            "framework": info.framework,
            "uri": f"runs:/{view.number}/{info.name}",
            "registered": [
                {"name": v.name, "version": v.version, "aliases": list(v.aliases)}
                for v in registered
                if v.model_path == info.name
            ],
        }
        for info in list_models(view)
    ]
    used: list[dict[str, Any]] = []
    produced: list[dict[str, Any]] = []
    for link in view.lineage:
        others = [
            other
            for other in store.list_artifact_links(name=link.name)
            if other.version == link.version and other.run_uuid != view.uuid
        ]
        row: dict[str, Any] = {
            "name": link.name,
            "version": link.version,
            "label": link.label,
            "type": link.type,
        }
        if link.role == "used":
            row["produced_by"] = [number(o.run_uuid) for o in others if o.role == "produced"]
            used.append(row)
        else:
            row["used_by"] = [number(o.run_uuid) for o in others if o.role == "used"]
            produced.append(row)
    return _json({"models": models, "used": used, "produced": produced})
