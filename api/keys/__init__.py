"""API keys over the API (operators and admins): list them, make one (the key shown
once), revoke one. Endpoints in `routes`; who may do what and the records in `service`;
the keys, their checks and queries are schemas.api_keys's, shared with `looptrack keys`."""

from api.keys.service import create, keys_page, one_key, revoke

__all__ = ["create", "keys_page", "one_key", "revoke"]
