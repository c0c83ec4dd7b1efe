"""Write the JSON Schema files, or with --check fail when one is stale."""

from __future__ import annotations

import sys

from schemas.jsonschema import render_schemas


def main(argv: list[str]) -> int:
    """Write (or with --check compare) the checked-in schema files; return the exit status."""
    if argv not in ([], ["--check"]):
        print("usage: python -m schemas.jsonschema [--check]", file=sys.stderr)
        return 2
    stale = 0
    for path, text in render_schemas().items():
        if argv:
            if path.read_text(encoding="utf-8") != text:
                print(f"{path} is stale: run python -m schemas.jsonschema")
                stale += 1
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
