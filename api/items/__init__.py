"""Items and returnable assets: their records and history for keys (`service`,
`routes`: /v1/items) and the public GS1 Digital Link resolver (`resolver`: /01/…, /8003/…)."""

from api.items.service import item_history, item_name, items_with_serial

__all__ = ["item_history", "item_name", "items_with_serial"]
