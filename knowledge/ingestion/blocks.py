"""The structured text that extraction produces and cleaning and chunking consume."""

from dataclasses import dataclass, field, replace

BLOCK_KINDS = ("heading", "paragraph", "table_row", "table", "list_item", "code")


@dataclass(slots=True)
class Block:
    kind: str
    text: str
    heading_path: list[str] = field(default_factory=list)
    # Where the block is in the source, for citations: {"page": 3}, {"sheet": "Sheet1", "row": 12}.
    position: dict = field(default_factory=dict)
    # For table_row blocks: the Markdown header ("| a | b |\n| --- | --- |") of their table.
    table_header: str | None = None
    # For heading blocks: 1 for a top-level heading.
    level: int = 0

    def __post_init__(self):
        if self.kind not in BLOCK_KINDS:
            raise ValueError(f"unknown block kind {self.kind!r}")

    def with_text(self, text: str) -> "Block":
        return replace(self, text=text, heading_path=list(self.heading_path), position=dict(self.position))


@dataclass(slots=True)
class ExtractedDocument:
    markdown: str
    blocks: list[Block]
    # What the reader found: {"format": "pdf", "pages": 3} or {"format": "text", "encoding": "gbk"}.
    meta: dict = field(default_factory=dict)


def markdown_cell(value) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.replace("|", "\\|").split())


def markdown_row(cells) -> str:
    return "| " + " | ".join(markdown_cell(cell) for cell in cells) + " |"


def markdown_header(cells) -> str:
    return markdown_row(cells) + "\n" + "| " + " | ".join("---" for _ in cells) + " |"


def render_markdown(blocks: list[Block]) -> str:
    parts: list[str] = []
    previous_header = None
    for block in blocks:
        if block.kind == "table_row":
            if block.table_header != previous_header or not parts:
                parts.append(block.table_header or "")
                previous_header = block.table_header
            parts[-1] = parts[-1] + "\n" + block.text if parts[-1] else block.text
            continue
        previous_header = None
        if block.kind == "heading":
            parts.append("#" * max(1, min(block.level or 1, 6)) + " " + block.text)
        elif block.kind == "list_item":
            parts.append("- " + block.text)
        elif block.kind == "code":
            parts.append("```\n" + block.text + "\n```")
        else:
            parts.append(block.text)
    return "\n\n".join(parts).strip() + "\n" if parts else ""
