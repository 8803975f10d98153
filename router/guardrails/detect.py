"""One detector for the entity types a tenant has asked to be scanned for."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from inferflux.crds.guardrails import DEFAULT_PHONE_REGIONS, EntityType
from inferflux.router.guardrails.credentials import find_secrets
from inferflux.router.guardrails.pii import (
    Finds,
    PhoneFinder,
    find_cards,
    find_emails,
    find_ibans,
    find_ip_addresses,
    find_national_ids,
)
from inferflux.router.guardrails.spans import Span, settle

Finder = Callable[[str], Finds]


class Detector:
    """Finds entities of the given types; overlapping finds are settled by `spans.settle`."""

    def __init__(
        self, entities: Collection[EntityType], phone_regions: Sequence[str] = DEFAULT_PHONE_REGIONS
    ) -> None:
        finders: dict[EntityType, Finder] = {
            EntityType.EMAIL: find_emails,
            EntityType.CARD: find_cards,
            EntityType.IBAN: find_ibans,
            EntityType.NATIONAL_ID: find_national_ids,
            EntityType.IP_ADDRESS: find_ip_addresses,
            EntityType.SECRET: find_secrets,
        }
        self.entities = frozenset(entities)
        self._finders = tuple((entity, finders[entity]) for entity in finders if entity in self.entities)
        # Phone numbers are looked for last, outside what the others found (see PhoneFinder.find).
        self._phones = PhoneFinder(phone_regions) if EntityType.PHONE in self.entities else None

    def find(self, text: str) -> list[Span]:
        """Every entity in ``text``, in text order, without overlaps."""
        if not self.entities or not text:
            return []
        found = [Span(entity, start, end) for entity, finder in self._finders for start, end in finder(text)]
        if self._phones is not None:
            taken = [(span.start, span.end) for span in found]
            found += [Span(EntityType.PHONE, start, end) for start, end in self._phones.find(text, taken)]
        return settle(found) if found else found  # nothing found: the common answer, as it is
