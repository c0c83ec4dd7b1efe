"""How the data goes out: the HTTP API (SPEC §8), a package per domain (registry, events,
stats, items, labels, epcis, dead_letters, pages), each with its endpoints in `routes.py`
beside the functions and queries they call; `app.py` puts them together."""
