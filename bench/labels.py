"""Label rendering throughput: N serialised items to an A4 PDF sheet and to a zip of PNGs.

    python bench/labels.py [--count 10000] [--columns 3] [--rows 8]

Rendering only, no database: builds N labels with random 11-character serials (the size
`POST /v1/labels` issues) and a few set-82 serials that need percent-encoding, then times
`pdf_sheet` and `png_zip` on them. Prints labels/s, wall time and output size for each.
Commissioning (inserting the items) is a later addition: one more entry in `steps`.
"""

from __future__ import annotations

import argparse
import os
import random
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.label_sheets import Label, pdf_sheet, png_zip  # noqa: E402
from schemas.digital_link import build_uri  # noqa: E402

BASE_URL = "https://id.looptrack.example"
GTIN = "07038010009990"
SERIAL_ALPHABET = string.ascii_letters + string.digits
SERIAL_LENGTH = 11  # 62^11: 65 bits, above the 50 bits of randomness SPEC §8 asks for
AWKWARD_SHARE = 20  # one serial in this many uses characters that are percent-encoded


def make_labels(n: int, seed: int = 1) -> list[Label]:
    rng = random.Random(seed)
    labels = []
    for i in range(n):
        serial = "".join(rng.choices(SERIAL_ALPHABET, k=SERIAL_LENGTH))
        if i % AWKWARD_SHARE == 0:
            serial = f'{serial[:6]}/%"*?'
        labels.append(
            Label(
                uri=build_uri(BASE_URL, GTIN, serial),
                gtin=GTIN,
                serial=serial,
                product="Solrik Eplejuice 0,5 l",
                deposit=300 if i % 2 else 0,
            )
        )
    return labels


def timed(step: Callable[[], bytes]) -> tuple[float, int]:
    """(seconds, output bytes) of one run of `step`."""
    started = time.perf_counter()
    out = step()
    return time.perf_counter() - started, len(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--count", type=int, default=10_000, help="labels to render")
    parser.add_argument("--columns", type=int, default=3, help="labels across an A4 sheet")
    parser.add_argument("--rows", type=int, default=8, help="labels down an A4 sheet")
    args = parser.parse_args()

    labels = make_labels(args.count)
    steps: list[tuple[str, Callable[[], bytes]]] = [
        (
            f"PDF, A4 {args.columns}x{args.rows}",
            lambda: pdf_sheet(labels, columns=args.columns, rows=args.rows),
        ),
        ("zip of PNGs (10 px/module)", lambda: png_zip(labels)),
    ]
    results = [(name, *timed(step)) for name, step in steps]

    print(f"machine: {os.cpu_count()} CPUs; {args.count:,} labels, rendering only (no database)")
    print(f"{'measurement':<30} {'labels/s':>10} {'seconds':>8} {'size':>10}")
    for name, seconds, size in results:
        print(f"{name:<30} {args.count / seconds:>10,.0f} {seconds:>8.2f} {size / 1e6:>7.1f} MB")


if __name__ == "__main__":
    main()
