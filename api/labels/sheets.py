"""Printable QR labels for serialised items: A4 label sheets (PDF), single codes (PNG, SVG)."""

from __future__ import annotations

import io
import re
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import zxingcpp
from PIL import Image
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from schemas.digital_link import build_uri, element_strings

# Q (recovers ~25 % of the symbol) rather than M (~15 %): these labels ride on returnable
# packaging through many trips of handling, washing and reverse vending machines, so scuffs
# and dirt matter more than the one or two symbol versions Q costs: a 20-character serial
# that is all percent-escapes behind a 50-character base URL gives version 8 (49 modules),
# modules still 0.4 mm wide on a 4x10 sheet (0.55 mm at 3x8).
# The encoder is zxing-cpp (Zint inside): pure-Python encoders (qrcode, segno) spend ~8 ms
# per symbol choosing the mask, 80 s for a 10,000-label batch; this takes 0.3 ms.
ERROR_CORRECTION = "Q"
# The ISO/IEC 18004 quiet zone: four light modules on every side, part of the symbol.
QUIET_ZONE = 4
# Pixels per module in PNGs: a 45-module symbol becomes 450 px, sharp on screens and prints.
PNG_BOX_SIZE = 10
# Space between a label's edge and its content. Sheets with the grid filling the page edge to
# edge (70x37 mm at 3x8, 52.5x29.7 mm at 4x10) are the usual A4 label paper; with the QR
# quiet zone on top of this, no dark module lies in the ~4 mm a laser printer cannot reach.
LABEL_PADDING = 3 * mm
# Gap between the QR code and the text beside it.
TEXT_GAP = 2 * mm
# The QR code takes at most this share of a label's width, leaving room for the text.
QR_MAX_WIDTH_SHARE = 0.45
# Font sizes in points: the largest tried, and the smallest before a product name is cut.
NAME_FONT = ("Helvetica-Bold", 9.0, 6.5)
TEXT_FONT = ("Helvetica", 7.0, 4.5)
# Line height as a multiple of the font size.
LEADING = 1.25
PAGE_SIZES = {"A4": A4, "LETTER": LETTER}

_dark_runs = re.compile(b"\x00+").finditer


@dataclass(frozen=True, slots=True)
class Label:
    """One serialised item's label: the Digital Link URI its QR code carries and the text."""

    uri: str  # GS1 Digital Link URI, e.g. http://localhost:8000/01/07038010009990/21/Ab3x
    item_class: str  # a GTIN-14, or "8003" + a GRAI asset type (schemas.grai)
    serial: str  # AI (21), or a GRAI's serial; GS1 character set 82
    product: str  # product name
    deposit: int  # øre (minor units of `currency`); 0 = no deposit
    currency: str = "NOK"


def pdf_sheet(
    labels: Sequence[Label],
    *,
    columns: int = 3,
    rows: int = 8,
    page: str = "A4",
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """Return a PDF of label sheets: `columns`x`rows` labels per page, filling the page.

    Each label has the QR code (vector, with its quiet zone), the product name, the GTIN and
    serial as "(01) …" and "(21) …" (a GRAI as "(8003) …"), and a "Return for deposit" line
    when the deposit is above 0. `page` is "A4" or "LETTER". `progress`, if given, is
    called with the number of labels drawn so far after each label.
    """
    if columns < 1 or rows < 1:
        raise ValueError(f"a sheet needs at least one column and row, not {columns}x{rows}")
    try:
        page_width, page_height = PAGE_SIZES[page.upper()]
    except KeyError:
        raise ValueError(f"page {page!r}: one of {', '.join(PAGE_SIZES)} expected") from None
    cell_width, cell_height = page_width / columns, page_height / rows
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=(page_width, page_height), pageCompression=1, invariant=1)
    canvas.setTitle("looptrack labels")
    canvas.setCreator("looptrack")
    per_page = columns * rows
    for done, label in enumerate(labels, start=1):
        slot = (done - 1) % per_page
        if slot == 0 and done > 1:
            canvas.showPage()
        row, column = divmod(slot, columns)
        left = column * cell_width
        top = page_height - row * cell_height
        _draw_label(canvas, label, left, top, cell_width, cell_height)
        if progress is not None:
            progress(done)
    canvas.showPage()  # an empty batch still gives a valid one-page PDF
    canvas.save()
    return out.getvalue()


def png(label: Label, *, box_size: int = PNG_BOX_SIZE) -> bytes:
    """Return the label's QR code as a 1-bit PNG, `box_size` pixels per module."""
    # zxing-cpp adds the four-module quiet zone.
    symbol = zxingcpp.write_barcode_to_image(_symbol(label.uri), scale=1, add_quiet_zones=True)
    image = Image.fromarray(symbol).convert("1", dither=Image.Dither.NONE)
    image = image.resize((image.width * box_size,) * 2, Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def svg(label: Label, *, module_px: int = PNG_BOX_SIZE) -> bytes:
    """Return the label's QR code as SVG: a viewBox in modules, `module_px` px per module."""
    modules = _modules(label.uri)
    side = len(modules) + 2 * QUIET_ZONE
    path = "".join(f"M{x + QUIET_ZONE} {y + QUIET_ZONE}h{w}v1h-{w}z" for x, y, w in _runs(modules))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{side * module_px}" '
        f'height="{side * module_px}" viewBox="0 0 {side} {side}" shape-rendering="crispEdges">'
        f'<rect width="{side}" height="{side}" fill="#fff"/>'
        f'<path fill="#000" d="{path}"/></svg>\n'
    ).encode()


def png_zip(
    labels: Sequence[Label],
    *,
    box_size: int = PNG_BOX_SIZE,
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """Return a zip of one PNG QR code per label, named `{item class}_{serial}.png`.

    The serial is percent-encoded in the name, so characters of GS1 set 82 that file systems
    reject (/ " * ? : < >) cannot appear; names that would clash on a case-insensitive file
    system get a `_2`, `_3` … suffix.
    """
    taken: set[str] = set()
    out = io.BytesIO()
    # PNGs are already deflated: storing them is as small and much faster.
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for done, label in enumerate(labels, start=1):
            archive.writestr(_file_name(label, taken), png(label, box_size=box_size))
            if progress is not None:
                progress(done)
    return out.getvalue()


def deposit_text(label: Label) -> str | None:
    """The label's deposit line, e.g. "Return for deposit: 3.00 NOK"; None without deposit."""
    if label.deposit <= 0:
        return None
    whole, cents = divmod(label.deposit, 100)
    return f"Return for deposit: {whole}.{cents:02d} {label.currency}"


def _symbol(uri: str) -> zxingcpp.Barcode:
    return zxingcpp.create_barcode(uri, zxingcpp.BarcodeFormat.QRCode, ec_level=ERROR_CORRECTION)


def _modules(uri: str) -> list[bytes]:
    """The QR symbol of `uri` without quiet zone, one bytes per row: 0 dark, 255 light."""
    image = Image.fromarray(
        zxingcpp.write_barcode_to_image(_symbol(uri), scale=1, add_quiet_zones=False)
    )
    flat, width = image.tobytes(), image.width
    return [flat[y : y + width] for y in range(0, len(flat), width)]


def _runs(modules: list[bytes]) -> Iterator[tuple[int, int, int]]:
    """(x, y, length) of each horizontal run of dark modules, y counted from the top."""
    for y, row in enumerate(modules):
        for run in _dark_runs(row):
            start, end = run.span()
            yield start, y, end - start


def _pdf_fill(modules: list[bytes]) -> str:
    """PDF operators filling the dark modules, one `re` per run, in module units."""
    ops = [
        f"{run.start()} {y} {run.end() - run.start()} 1 re"
        for y, row in enumerate(modules)
        for run in _dark_runs(row)
    ]
    ops.append("f")
    return " ".join(ops)


def _draw_label(
    canvas: Canvas, label: Label, left: float, top: float, width: float, height: float
) -> None:
    modules = _modules(label.uri)
    qr_side = min(height - 2 * LABEL_PADDING, width * QR_MAX_WIDTH_SHARE)
    module = qr_side / (len(modules) + 2 * QUIET_ZONE)
    qr_left = left + LABEL_PADDING
    qr_top = top - (height - qr_side) / 2
    canvas.saveState()
    # Module units, y downwards from the symbol's top-left corner inside the quiet zone.
    canvas.transform(
        module, 0, 0, -module, qr_left + QUIET_ZONE * module, qr_top - QUIET_ZONE * module
    )
    # One literal `re` operator per run: the path-object API formats every number through
    # Python calls, and with ~300 runs per symbol that dominated a 10,000-label sheet.
    canvas.addLiteral(_pdf_fill(modules))
    canvas.restoreState()

    text_left = qr_left + qr_side + TEXT_GAP
    text_width = left + width - LABEL_PADDING - text_left
    texts = element_strings(label.item_class, label.serial)
    deposit = deposit_text(label)
    if deposit is not None:
        texts.append(deposit)
    # One size for the key and deposit lines, the largest at which all of them fit whole.
    size = min(_fitted(text, TEXT_FONT, text_width, cut=False)[1] for text in texts)
    lines = [(NAME_FONT, _fitted(label.product, NAME_FONT, text_width, cut=True))]
    lines += [(TEXT_FONT, (text, size)) for text in texts]
    block = sum(line_size * LEADING for _, (_, line_size) in lines)
    line_top = top - (height - block) / 2  # the text block centred beside the QR code
    for (font, _, _), (text, line_size) in lines:
        line_top -= line_size * LEADING
        canvas.setFont(font, line_size)
        canvas.drawString(text_left, line_top + line_size * (LEADING - 1), text)


def _fitted(
    text: str, font: tuple[str, float, float], width: float, *, cut: bool
) -> tuple[str, float]:
    """(text, size) that fits `width` points: shrink from the largest size to the smallest,
    then cut with an ellipsis if `cut`, else keep shrinking (a GTIN or serial stays whole)."""
    name, largest, smallest = font
    natural = stringWidth(text, name, largest)
    if natural <= width:
        return text, largest
    size = largest * width / natural
    if size >= smallest or not cut:
        return text, size
    # Start from a proportional cut, so a long name costs a few measurements, not hundreds.
    text = text[: int(len(text) * width / stringWidth(text, name, smallest)) + 1]
    while len(text) > 1 and stringWidth(text + "…", name, smallest) > width:
        text = text[:-1]
    return text.rstrip() + "…", smallest


def _file_name(label: Label, taken: set[str]) -> str:
    stem = f"{label.item_class}_{quote(label.serial, safe='')}"
    name, n = f"{stem}.png", 1
    while name.lower() in taken:
        n += 1
        name = f"{stem}_{n}.png"
    taken.add(name.lower())
    return name


class LabelFormat(StrEnum):
    PDF = "pdf"  # A4 label sheets
    PNG = "png"  # one item's QR code
    SVG = "svg"  # one item's QR code
    ZIP = "zip"  # a PNG per item


def labels_for(
    item_class: str, serials: list[str], product: dict[str, Any], base_url: str
) -> list[Label]:
    """One label per serial of `item_class`: its Digital Link address under `base_url`,
    the product's name and deposit (øre)."""
    return [
        Label(
            uri=build_uri(base_url, item_class, serial),
            item_class=item_class,
            serial=serial,
            product=product["name"],
            deposit=product["deposit"],
        )
        for serial in serials
    ]


# Renders of more than SMALL_RENDER labels that run at once in one process: each holds the
# GIL for seconds, and twenty at once made every other request wait 10.8 s. Others wait for
# a slot up to RENDER_WAIT_S, then are refused (RenderBusy: 503 with Retry-After).
RENDER_SLOTS = 2
SMALL_RENDER = 100
RENDER_WAIT_S = 30.0
_render_slots = threading.BoundedSemaphore(RENDER_SLOTS)


class RenderBusy(RuntimeError):
    """Every render slot stayed taken for RENDER_WAIT_S."""


def render(
    labels: list[Label],
    fmt: LabelFormat,
    progress: Callable[[int], None] | None = None,
    grid: tuple[int, int] = (3, 8),
) -> bytes:
    """The labels as one file of format `fmt` (png and svg: exactly one label); a PDF
    has `grid` (columns, rows) labels per A4 page. More than SMALL_RENDER labels wait for
    one of RENDER_SLOTS; RenderBusy when none frees up in RENDER_WAIT_S."""
    if fmt in (LabelFormat.PNG, LabelFormat.SVG) and len(labels) != 1:
        raise ValueError(f"format {fmt.value} holds one label, not {len(labels)}: use pdf or zip")
    if len(labels) <= SMALL_RENDER:
        return _render(labels, fmt, progress, grid)
    if not _render_slots.acquire(timeout=RENDER_WAIT_S):
        raise RenderBusy(
            f"{RENDER_SLOTS} large label renders are running and none ended within "
            f"{RENDER_WAIT_S:g} s"
        )
    try:
        return _render(labels, fmt, progress, grid)
    finally:
        _render_slots.release()


def _render(
    labels: list[Label],
    fmt: LabelFormat,
    progress: Callable[[int], None] | None,
    grid: tuple[int, int],
) -> bytes:
    if fmt is LabelFormat.PDF:
        columns, rows = grid
        return pdf_sheet(labels, columns=columns, rows=rows, progress=progress)
    if fmt is LabelFormat.ZIP:
        return png_zip(labels)
    if fmt is LabelFormat.PNG:
        return png(labels[0])
    return svg(labels[0])
