"""Label rendering: every QR code in the PDF sheets, PNGs, SVGs and zips decodes, by decoders
the project does not write, back to exactly the Digital Link URI of its item."""

from __future__ import annotations

import io
import random
import re
import zipfile
from urllib.parse import unquote

import cairosvg
import numpy as np
import pytest
from PIL import Image

from api.labels.sheets import Label, pdf_sheet, png, png_zip, svg
from schemas.digital_link import SERIAL_CHARSET_82, build_uri
from tests.qr import cells, opencv_decode, page_texts, rendered_pages, zxing_decode

BASE_URL = "http://localhost:8000"
GTIN = "07038010009990"
# Set-82 characters that need percent-encoding in the URI and are unsafe in file names,
# a literal "%25" that must not be decoded twice, and the longest serial allowed.
AWKWARD_SERIALS = [
    'A/b%2"x*?',
    "!\"%&'()*+,-./:;<=>?_",
    "%25%2F",
    "Ab3xK9pQ2mZ",
    "12345678901234567890",
    "<a>:b;c=d",
]


def make_labels(n: int, *, seed: int = 1, deposit: int = 300) -> list[Label]:
    rng = random.Random(seed)
    serials = AWKWARD_SERIALS[:n]
    while len(serials) < n:
        serial = "".join(rng.choices(SERIAL_CHARSET_82, k=rng.randint(1, 20)))
        if serial not in serials:
            serials.append(serial)
    return [
        Label(
            uri=build_uri(BASE_URL, GTIN, serial),
            item_class=GTIN,
            serial=serial,
            product="Solrik Eplejuice 0,5 l",
            deposit=deposit,
        )
        for serial in serials
    ]


def test_full_3x8_page_decodes_to_the_uris_in_grid_order() -> None:
    labels = make_labels(24)

    pages = rendered_pages(pdf_sheet(labels, columns=3, rows=8))

    assert len(pages) == 1
    expected = [label.uri for label in labels]
    assert sorted(zxing_decode(pages[0])) == sorted(expected)
    assert [opencv_decode(cell) for cell in cells(pages[0], 3, 8)] == expected


def test_partial_4x10_pages_hold_40_then_the_rest() -> None:
    labels = make_labels(52, seed=2)

    pdf = pdf_sheet(labels, columns=4, rows=10)
    pages = rendered_pages(pdf)

    assert len(pages) == 2
    assert sorted(zxing_decode(pages[0])) == sorted(label.uri for label in labels[:40])
    assert sorted(zxing_decode(pages[1])) == sorted(label.uri for label in labels[40:])
    last = cells(pages[1], 4, 10)
    assert [opencv_decode(cell) for cell in last[:12]] == [label.uri for label in labels[40:]]
    assert [zxing_decode(cell) for cell in last[12:]] == [[]] * 28  # the rest stays blank


def test_text_shows_keys_and_a_deposit_line_only_when_there_is_a_deposit() -> None:
    deposits = [0, 300, 250, 0, 5, 0]
    labels = [
        Label(
            uri=build_uri(BASE_URL, GTIN, serial),
            item_class=GTIN,
            serial=serial,
            product=f"Product {i}",
            deposit=deposit,
        )
        for i, (serial, deposit) in enumerate(zip(AWKWARD_SERIALS, deposits, strict=True))
    ]

    (text,) = page_texts(pdf_sheet(labels))

    assert text.count(f"(01) {GTIN}") == 6
    for serial in AWKWARD_SERIALS:
        assert f"(21) {serial}" in text  # as printed, not percent-encoded
    assert text.count("Return for deposit") == 3
    assert "Return for deposit: 3.00 NOK" in text
    assert "Return for deposit: 2.50 NOK" in text
    assert "Return for deposit: 0.05 NOK" in text
    blocks = re.split(r"Product \d", text)[1:]
    assert ["Return for deposit" in block for block in blocks] == [d > 0 for d in deposits]


def test_long_product_name_is_cut_and_the_key_stays_whole() -> None:
    name = "Gjenbruksboks for take-away mat, stor, med lokk og et svært langt navn " * 3
    label = make_labels(1)[0]
    long_label = Label(label.uri, label.item_class, label.serial, name, label.deposit)

    (text,) = page_texts(pdf_sheet([long_label], columns=4, rows=10))

    assert "Gjenbruksboks" in text
    assert "…" in text
    assert name.strip() not in text
    assert f"(21) {label.serial}" in text


def test_progress_counts_every_label() -> None:
    seen: list[int] = []

    pdf_sheet(make_labels(30), columns=4, rows=10, progress=seen.append)

    assert seen == list(range(1, 31))


def test_empty_batch_is_one_blank_page() -> None:
    pages = rendered_pages(pdf_sheet([]))

    assert len(pages) == 1
    assert zxing_decode(pages[0]) == []


@pytest.mark.parametrize("serial", AWKWARD_SERIALS)
def test_png_and_svg_decode_to_the_uri(serial: str) -> None:
    label = Label(build_uri(BASE_URL, GTIN, serial), GTIN, serial, "P", 0)

    png_image = Image.open(io.BytesIO(png(label, box_size=4))).convert("L")
    svg_image = Image.open(io.BytesIO(cairosvg.svg2png(bytestring=svg(label)))).convert("L")

    for image in (png_image, svg_image):
        assert zxing_decode(image) == [label.uri]
        assert opencv_decode(np.asarray(image)) == label.uri


def test_png_keeps_a_four_module_quiet_zone() -> None:
    label = make_labels(1)[0]
    box = 5

    image = Image.open(io.BytesIO(png(label, box_size=box))).convert("L")

    pixels = np.asarray(image)
    quiet = 4 * box
    assert pixels.shape[0] == pixels.shape[1]
    assert (pixels[:quiet] == 255).all() and (pixels[-quiet:] == 255).all()
    assert (pixels[:, :quiet] == 255).all() and (pixels[:, -quiet:] == 255).all()
    assert (pixels[quiet, quiet : quiet + box] == 0).all()  # the finder pattern's corner


def test_png_zip_holds_one_decodable_png_per_label_under_safe_unique_names() -> None:
    labels = make_labels(len(AWKWARD_SERIALS))
    # A serial differing only in case from another, and a serial listed twice.
    for serial in ("ab3xK9pQ2mZ", AWKWARD_SERIALS[0]):
        labels.append(Label(build_uri(BASE_URL, GTIN, serial), GTIN, serial, "P", 0))

    with zipfile.ZipFile(io.BytesIO(png_zip(labels))) as archive:
        names = archive.namelist()
        decoded = [zxing_decode(Image.open(io.BytesIO(archive.read(name)))) for name in names]

    assert len(names) == len(labels)
    assert len({name.lower() for name in names}) == len(names)
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9._%-]+\.png", name), name
    assert decoded == [[label.uri] for label in labels]
    stems = [name.removeprefix(f"{GTIN}_").removesuffix(".png") for name in names]
    assert [unquote(stem) for stem in stems[: len(AWKWARD_SERIALS)]] == AWKWARD_SERIALS
