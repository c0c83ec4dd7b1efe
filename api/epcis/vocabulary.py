"""The EPCIS 2.0 words for looptrack events (SPEC §4): each event type's CBV 2.0 bizStep and
disposition, both ways, and the project's own terms where CBV has none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from schemas.events import STREAM_REUSE, EventType

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
"""The JSON-LD context of EPCIS 2.0 documents, as the standard publishes it."""
PREFIX = "looptrack"
"""The JSON-LD prefix our documents declare for the project's namespace."""
VOCABULARY_PATH = "/voc/"
"""The project's namespace, under the deployment's public base URL."""

# Names of the extension fields, relative to the project's namespace.
REASON = "reason"
STREAM = "stream"
SEQ = "seq"
ATTRS = "attrs"

# The forms in which CBV 2.0 values are written besides their bare names: the CBV 2.0 Web
# URIs, the EPCIS 1.x URNs, the GS1 Web Vocabulary and their compact forms in the EPCIS
# context ("cbv:", "gs1:"). The Web URI namespace is on http or https.
_BIZ_STEP_FORMS = (
    "https://ref.gs1.org/cbv/BizStep-",
    "http://ref.gs1.org/cbv/BizStep-",
    "urn:epcglobal:cbv:bizstep:",
    "https://gs1.org/voc/Bizstep-",
    "cbv:BizStep-",
    "gs1:Bizstep-",
)
_DISPOSITION_FORMS = (
    "https://ref.gs1.org/cbv/Disp-",
    "http://ref.gs1.org/cbv/Disp-",
    "urn:epcglobal:cbv:disp:",
    "https://gs1.org/voc/Disposition-",
    "cbv:Disp-",
    "gs1:Disposition-",
)


class Step(NamedTuple):
    """An event type's bizStep, and its disposition (None: depends on the stream)."""

    biz_step: str
    disposition: str | None
    cbv: bool  # False: the bizStep is a project term ("BizStep-" + biz_step)


_STEPS: dict[EventType, Step] = {
    EventType.COMMISSIONED: Step("commissioning", "active", cbv=True),
    EventType.FILLED: Step("filling", "active", cbv=False),
    EventType.SOLD: Step("retail_selling", "retail_sold", cbv=True),
    EventType.RETURNED: Step("collecting", "returned", cbv=True),
    EventType.REJECTED: Step("inspecting", "non_conformant", cbv=True),
    EventType.SORTED: Step("sorting", None, cbv=False),
    EventType.WASHED: Step("washing", "available", cbv=False),
    EventType.RECYCLED: Step("destroying", "destroyed", cbv=True),
    EventType.RETIRED: Step("decommissioning", "inactive", cbv=True),
}
# CBV steps that have no event type of their own but one looptrack event on capture, with
# the dispositions they carry there. A producer's or filler's shipment puts its units on
# the market: SPEC §4's `sold` ("sold or delivered to retail"), what deposit schemes count.
# Capture only: exported, such an event is a `sold` (retail_selling), and EQ_bizStep=
# shipping selects nothing, as for any step looptrack does not store.
_CAPTURED_AS: dict[str, tuple[EventType, tuple[str, ...]]] = {
    "shipping": (EventType.SOLD, ("in_transit", "retail_sold")),
}
# A sorted package goes back into the loop (available) or into a material stream (disposed).
SORTED_TO_REUSE = "available"
SORTED_TO_MATERIAL = "disposed"


@dataclass(frozen=True, slots=True)
class DispositionMatch:
    """What one disposition selects: event types, and for `sorted` which streams (None:
    sorted events are not selected)."""

    types: frozenset[EventType]
    sorted_to_reuse: bool | None = None


class Vocabulary:
    """The bizStep/disposition table of one deployment: the project's terms are URIs under
    its public base URL (`{base}/voc/BizStep-filling`), CBV's are its bare names."""

    def __init__(self, public_base_url: str) -> None:
        self.namespace = public_base_url.rstrip("/") + VOCABULARY_PATH
        self.context: list[str | dict[str, str]] = [EPCIS_CONTEXT, {PREFIX: self.namespace}]
        self._type_of_step = {self._step_key(step): type_ for type_, step in _STEPS.items()}

    def _step_key(self, step: Step) -> str:
        return step.biz_step if step.cbv else f"{self.namespace}BizStep-{step.biz_step}"

    def field(self, name: str) -> str:
        """An extension field's name as our documents write it, e.g. "looptrack:reason"."""
        return f"{PREFIX}:{name}"

    def biz_step(self, type_: EventType) -> str:
        """The bizStep written for `type_`: a CBV name or a project URI."""
        return self._step_key(_STEPS[type_])

    def disposition(self, type_: EventType, stream: str | None) -> str:
        """The disposition written for `type_` (for `sorted`, by its stream)."""
        fixed = _STEPS[type_].disposition
        if fixed is not None:
            return fixed
        return SORTED_TO_REUSE if stream == STREAM_REUSE else SORTED_TO_MATERIAL

    def expand(self, term: str, prefixes: dict[str, str]) -> str:
        """`term` with a declared JSON-LD prefix replaced by its IRI ("looptrack:x" →
        "{namespace}x"); "looptrack:" is ours even where a document forgets to declare it."""
        prefix, colon, rest = term.partition(":")
        if not colon or rest.startswith("//"):
            return term
        if prefix in prefixes:
            return prefixes[prefix] + rest
        return self.namespace + rest if prefix == PREFIX else term

    def event_type(self, biz_step: str, prefixes: dict[str, str]) -> EventType | None:
        """The looptrack event type of a bizStep in any of its written forms, or None."""
        key = _cbv_name(biz_step, _BIZ_STEP_FORMS)
        if key is None:
            key = self.expand(biz_step, prefixes)
        return self._type_of_step.get(key)

    def captured_step(
        self, biz_step: str, prefixes: dict[str, str]
    ) -> tuple[EventType, tuple[str, ...]] | None:
        """The event type a captured event of `biz_step` is stored as, and the
        dispositions it may carry; None for a step looptrack cannot store."""
        type_ = self.event_type(biz_step, prefixes)
        if type_ is not None:
            return type_, self.dispositions(type_)
        return _CAPTURED_AS.get(_cbv_name(biz_step, _BIZ_STEP_FORMS) or "")

    def disposition_name(self, disposition: str, prefixes: dict[str, str]) -> str:
        """A disposition as its bare CBV name where it is one, else expanded."""
        name = _cbv_name(disposition, _DISPOSITION_FORMS)
        return name if name is not None else self.expand(disposition, prefixes)

    def dispositions(self, type_: EventType) -> tuple[str, ...]:
        """The dispositions an event of `type_` may carry."""
        fixed = _STEPS[type_].disposition
        return (fixed,) if fixed is not None else (SORTED_TO_REUSE, SORTED_TO_MATERIAL)

    def disposition_match(self, disposition: str, prefixes: dict[str, str]) -> DispositionMatch:
        """The stored events an `EQ_disposition` value selects (none for a value no
        looptrack event carries)."""
        name = self.disposition_name(disposition, prefixes)
        types = frozenset(t for t, step in _STEPS.items() if step.disposition == name)
        if name == SORTED_TO_REUSE:
            return DispositionMatch(types | {EventType.SORTED}, sorted_to_reuse=True)
        if name == SORTED_TO_MATERIAL:
            return DispositionMatch(types | {EventType.SORTED}, sorted_to_reuse=False)
        return DispositionMatch(types)


def _cbv_name(value: str, forms: tuple[str, ...]) -> str | None:
    if ":" not in value:
        return value  # a bare CBV name, the JSON-LD form
    for form in forms:
        if value.startswith(form) and len(value) > len(form):
            return value[len(form) :]
    return None
