"""Reading QR codes back with decoders the project does not write (zxing-cpp's reader,
OpenCV), from PNGs and from PDF pages rendered by PDFium."""

from __future__ import annotations

import cv2
import numpy as np
import pypdfium2 as pdfium
import zxingcpp
from PIL import Image

RENDER_DPI = 150  # modules of 0.5 to 0.7 mm become 3 to 4 pixels: a modest scan


def zxing_decode(image: Image.Image | np.ndarray) -> list[str]:
    return [
        code.text for code in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    ]


def opencv_decode(image: np.ndarray) -> str:
    # OpenCV's two detectors each miss a few valid symbols (the classic one about 1 % of
    # these, the ArUco-based one some anti-aliased renders); what is checked here is that an
    # independent implementation reads the same content, so either detector may find it.
    text, _, _ = cv2.QRCodeDetector().detectAndDecode(image)
    if not text:
        text, _, _ = cv2.QRCodeDetectorAruco().detectAndDecode(image)
    return str(text)


def rendered_pages(pdf: bytes) -> list[Image.Image]:
    document = pdfium.PdfDocument(pdf)
    try:
        return [
            page.render(scale=RENDER_DPI / 72, grayscale=True).to_pil().convert("L")
            for page in document
        ]
    finally:
        document.close()


def page_texts(pdf: bytes) -> list[str]:
    document = pdfium.PdfDocument(pdf)
    try:
        return [page.get_textpage().get_text_range() for page in document]
    finally:
        document.close()


def cells(page: Image.Image, columns: int, rows: int) -> list[np.ndarray]:
    """The page cut along the label grid, row by row."""
    pixels = np.asarray(page)
    height, width = pixels.shape
    return [
        pixels[
            r * height // rows : (r + 1) * height // rows,
            c * width // columns : (c + 1) * width // columns,
        ]
        for r in range(rows)
        for c in range(columns)
    ]
