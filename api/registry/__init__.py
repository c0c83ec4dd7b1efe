"""The registry: packaging types, products, GRAI asset types, sites, devices, sorting
streams and targets. Endpoints in `routes` (the records and their upserts are
schemas.registry's and schemas.circularity's); reads the pages share in `service`."""

from api.registry.service import brand_products, device_statuses

__all__ = ["brand_products", "device_statuses"]
