"""Write a resource's new status and the Events its transitions deserve, in one place for every kind."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from inferflux.crds.meta import API_VERSION, Condition, ObjectMeta
from inferflux.operator.events import transition_events
from inferflux.operator.storage import Storage


async def report_status(
    storage: Storage,
    kind: str,
    metadata: ObjectMeta,
    old: BaseModel,
    new: BaseModel,
    others: frozenset[str] = frozenset(),
) -> bool:
    """Patch ``new`` over ``old`` when they differ, then post Events; True when something was written.

    Every field is sent, unset ones as null, so a merge patch also clears what no longer applies;
    except ``others``: status fields another writer owns (a Tenant's spend, written by the router).
    """
    if new == old:
        return False
    namespace, name = metadata.namespace or "", metadata.name
    await storage.patch_status(
        kind, namespace, name, new.model_dump(by_alias=True, mode="json", exclude=set(others))
    )
    regarding: dict[str, Any] = {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata.to_wire()}
    old_conditions: list[Condition] = getattr(old, "conditions", [])
    for event in transition_events(old_conditions, getattr(new, "conditions", [])):
        storage.post_event_soon(regarding, event.type, event.reason, event.note)
    return True
