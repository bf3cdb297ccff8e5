"""Rebuild the BM25 postings of every chunk with the current tokenizer (and user dictionary)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from retrieval.indexing import index_tokenizer, reindex_all
from retrieval.tokenize import signature


class Command(BaseCommand):
    help = "Re-tokenize every chunk into the BM25 index, e.g. after changing BM25_USER_DICTIONARY."

    def add_arguments(self, parser):
        parser.add_argument("--if-stale", action="store_true", help="Only when the index follows another tokenizer.")

    def handle(self, *args, **options):
        before, now = index_tokenizer(), signature()
        if options["if_stale"] and before == now:
            self.stdout.write(f"The BM25 index already follows tokenizer {now}.")
            return

        def progress(done, total):
            self.stderr.write(f"\rre-indexed {done}/{total} chunks", ending="")

        count = reindex_all(progress=progress)
        self.stderr.write("")
        self.stdout.write(f"Re-indexed {count} chunks with tokenizer {now} (was {before or 'unrecorded'}).")
