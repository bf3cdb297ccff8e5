"""BM25 index maintenance, called by the ingestion pipeline (bodies come with the retrieval work)."""


def index_chunks(*, chunk_ids: list[int]) -> None:
    return None


def searchable_changed(*, added: list[int], removed: list[int]) -> None:
    return None
