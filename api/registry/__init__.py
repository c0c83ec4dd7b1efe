"""The registry: packaging types, products, GRAI asset types, sites, devices, sorting
streams and targets. Endpoints in `routes`; the reads they and the pages call in `service`
(the records, their validation and upserts are schemas.registry's and
schemas.circularity's)."""

from api.registry.service import brand_products, device_statuses, packaging_types

__all__ = ["brand_products", "device_statuses", "packaging_types"]
