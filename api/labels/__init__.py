"""QR labels: commissioning serialised items (`commissioning`), drawing their labels as
A4 sheets, PNGs, SVGs or a zip (`sheets`), keeping downloads for when they are asked for
again (`cache`), and the endpoints (`routes`)."""

from api.labels.commissioning import Batch, UnknownProduct, batch_items, commission, item_product
from api.labels.routes import busy
from api.labels.sheets import Label, LabelFormat, RenderBusy, labels_for, render

__all__ = [
    "Batch",
    "Label",
    "LabelFormat",
    "RenderBusy",
    "UnknownProduct",
    "batch_items",
    "busy",
    "commission",
    "item_product",
    "labels_for",
    "render",
]
