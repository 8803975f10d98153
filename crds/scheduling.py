"""A tenant's place in the router's fair queue: its weight within a priority band, and the band.

The router queues requests per model when every slot is busy (docs/scheduling.md). Bands are served
strictly in order, highest priority first; within a band, tenants share the model's capacity in
proportion to their weight, counted in tokens. A negative priority marks a tenant's requests as
sheddable: under saturation they are refused before anything else.
"""

from __future__ import annotations

from typing import Final

from pydantic import Field

from inferflux.crds.meta import KubeModel

MIN_PRIORITY: Final = -10
MAX_PRIORITY: Final = 10
MAX_WEIGHT: Final = 1000


class Scheduling(KubeModel):
    """How the router's fair queue treats one tenant's requests."""

    weight: int = Field(
        default=1,
        ge=1,
        le=MAX_WEIGHT,
        description="Share of a model's capacity within the tenant's priority band, relative to the "
        "other tenants waiting in that band (tokens, not requests).",
    )
    priority: int = Field(
        default=0,
        ge=MIN_PRIORITY,
        le=MAX_PRIORITY,
        description="Priority band: higher bands are served first; negative means sheddable (refused "
        "first under saturation). A request header may lower it, never raise it.",
    )
