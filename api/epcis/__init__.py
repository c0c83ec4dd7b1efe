"""EPCIS 2.0: events out as a JSON-LD query document (`export`), ObjectEvents in
(`capture`), the EPC and CBV mappings they share (`identifiers`, `vocabulary`), and the
endpoints under /v1/epcis (`routes`)."""
