import io

import pytest
from fpdf import FPDF

from knowledge.ingestion.chunk import tokenizer_counter


@pytest.fixture(scope="session")
def count_tokens():
    """The default embedding model's tokenizer, loaded once for the whole run."""
    return tokenizer_counter()


class _ReportPDF(FPDF):
    """A PDF with a running header and a page-number footer on every page."""

    header_text = "ACME Corp Annual Report 2024"

    def header(self):
        self.set_font("Helvetica", size=9)
        self.cell(0, 8, self.header_text, new_x="LMARGIN", new_y="NEXT")

    def footer(self):
        self.set_y(-15)
        self.set_font("Helvetica", size=9)
        self.cell(0, 8, f"Page {self.page_no()} of {{nb}}")


PAGE_TEXTS = [
    "Revenue grew by 3.5% in 2024, driven by retail lending in the eastern provinces.",
    "Deposits reached $3.5 million at the end of the year, above the forecast made in March.",
    "The board approved a new credit policy for small businesses on March 1, 2024.",
]


def make_pdf(pages=PAGE_TEXTS) -> bytes:
    pdf = _ReportPDF()
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def make_image_pdf() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (400, 200), "white")
    ImageDraw.Draw(image).rectangle((20, 20, 380, 180), outline="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(io.BytesIO(buffer.getvalue()), x=10, y=10, w=180)
    return bytes(pdf.output())


@pytest.fixture
def pdf_bytes():
    return make_pdf()
