"""Write the payload JSON Schema file, or with --check fail when it is stale."""

from __future__ import annotations

import sys

from schemas.jsonschema import PAYLOAD_SCHEMA_PATH, render_payload_json_schema


def main(argv: list[str]) -> int:
    """Write (or with --check compare) the checked-in schema file; return the exit status."""
    text = render_payload_json_schema()
    if argv == ["--check"]:
        current = PAYLOAD_SCHEMA_PATH.read_text(encoding="utf-8")
        if current != text:
            print(f"{PAYLOAD_SCHEMA_PATH} is stale: run python -m schemas.jsonschema")
            return 1
        return 0
    if argv:
        print("usage: python -m schemas.jsonschema [--check]", file=sys.stderr)
        return 2
    PAYLOAD_SCHEMA_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {PAYLOAD_SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
