"""Retention purge: the one way to delete document versions, which the database otherwise refuses.

It removes archived documents whose last change is older than the cut-off, with everything that
points at them, dependants first: BM25 postings (and their statistics, through
`retrieval.indexing.chunks_delete`), vectors, chunks, ingestion rows, source records, hit-test
expectations, reviews, edit locks, and the audit rows that point at those versions (the foreign
keys would otherwise fail the commit). Each purged document leaves one `purge` audit row that records
what was removed (numbers and SHA-256 of every version). The trigger exception is scoped to this
transaction with SET LOCAL, so nothing else can use it.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from core.audit import AuditAction, audit_log
from knowledge.models import Chunk, Document, DocumentState, DocumentVersion
from retrieval.indexing import chunks_delete


class Command(BaseCommand):
    help = "Delete archived documents (all their versions) last changed before a cut-off; audited."

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--archived-before", help="ISO date: purge documents archived before this day.")
        group.add_argument("--older-than-days", type=int, help="Purge documents archived more than N days ago.")
        parser.add_argument("--document", type=int, action="append", help="Only this document id (repeatable).")
        parser.add_argument("--actor", help="Username recorded in the audit row (default: system).")
        parser.add_argument("--dry-run", action="store_true", help="Show what would be purged; change nothing.")

    def handle(self, *args, **options):
        cutoff = self._cutoff(options)
        actor = None
        if options["actor"]:
            try:
                actor = User.objects.get(username=options["actor"])
            except User.DoesNotExist:
                raise CommandError(f"Unknown user {options['actor']!r}.") from None
        files: set[str] = set()
        with transaction.atomic():
            documents = Document.objects.select_for_update(of=("self",)).select_related("knowledge_base__department")
            documents = documents.filter(state=DocumentState.ARCHIVED, updated_at__lt=cutoff).order_by("pk")
            if options["document"]:
                documents = documents.filter(pk__in=options["document"])
            documents = list(documents)
            if options["dry_run"]:
                for document in documents:
                    self.stdout.write(f"would purge document {document.pk} {document.title!r}")
                transaction.set_rollback(True)
                return
            with connection.cursor() as cursor:
                # Lifts the append-only triggers for this transaction only (see core 0002).
                cursor.execute("SET LOCAL app.allow_purge = 'on'")
            for document in documents:
                files |= self._purge(document, actor=actor, cutoff=cutoff)
                self.stdout.write(f"purged document {document.pk} {document.title!r}")
            with connection.cursor() as cursor:
                # SET LOCAL lasts until the outermost transaction ends (a failure rolls it back
                # with the savepoint): when called inside one, close the exception here.
                cursor.execute("SET LOCAL app.allow_purge = 'off'")
            transaction.on_commit(lambda: self._delete_files(files))
        self.stdout.write(self.style.SUCCESS(f"{len(documents)} document(s) purged."))

    def _cutoff(self, options) -> datetime:
        if options["older_than_days"] is not None:
            if options["older_than_days"] < 0:
                raise CommandError("--older-than-days must not be negative.")
            return timezone.now() - timedelta(days=options["older_than_days"])
        try:
            day = datetime.fromisoformat(options["archived_before"]).date()
        except ValueError:
            raise CommandError("--archived-before takes a date such as 2024-12-31.") from None
        return timezone.make_aware(datetime.combine(day, time.min))

    def _purge(self, document: Document, *, actor, cutoff: datetime) -> set[str]:
        versions = list(
            DocumentVersion.objects.filter(document=document)
            .order_by("number")
            .values("pk", "number", "content_sha256", "file_sha256", "original_file")
        )
        version_ids = [v["pk"] for v in versions]
        chunk_ids = list(Chunk.objects.filter(document=document).values_list("pk", flat=True))
        chunks_delete(chunk_ids=chunk_ids)  # postings, vectors and chunks; statistics follow
        counts = {"chunks": len(chunk_ids)}
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM knowledge_versioningestion WHERE version_id = ANY(%s)", [version_ids])
            counts["ingestion_rows"] = cursor.rowcount
            cursor.execute(
                "DELETE FROM sources_sourcerecord WHERE document_id = %s RETURNING source_id, external_key",
                [document.pk],
            )
            source_records = [{"source_id": source, "key": key} for source, key in cursor.fetchall()]
            cursor.execute("DELETE FROM retrieval_hittestquery_expected_documents WHERE document_id = %s", [document.pk])
            counts["hit_test_expectations"] = cursor.rowcount
            cursor.execute("DELETE FROM core_auditentry WHERE version_id = ANY(%s)", [version_ids])
            audit_rows = cursor.rowcount
            cursor.execute("DELETE FROM knowledge_review WHERE document_id = %s", [document.pk])
            reviews = cursor.rowcount
            cursor.execute("DELETE FROM knowledge_editlock WHERE document_id = %s", [document.pk])
            cursor.execute(
                "UPDATE knowledge_document SET latest_version_id = NULL, live_version_id = NULL WHERE id = %s",
                [document.pk],
            )
            # One statement: the versions' parent links all point inside the deleted set.
            cursor.execute("DELETE FROM knowledge_documentversion WHERE document_id = %s", [document.pk])
            cursor.execute("DELETE FROM knowledge_document WHERE id = %s", [document.pk])
        audit_log(
            actor=actor,
            action=AuditAction.PURGE,
            department=document.knowledge_base.department,
            document_id=document.pk,
            title=document.title,
            knowledge_base_id=document.knowledge_base_id,
            archived_before=cutoff,
            versions=[
                {"number": v["number"], "content_sha256": v["content_sha256"], "file_sha256": v["file_sha256"]}
                for v in versions
            ],
            audit_rows_deleted=audit_rows,
            reviews_deleted=reviews,
            # A source that still returns these records creates the documents again on its next sync.
            source_records_deleted=source_records,
            **{f"{name}_deleted": count for name, count in counts.items()},
        )
        return {v["original_file"] for v in versions if v["original_file"]}

    @staticmethod
    def _delete_files(names: set[str]) -> None:
        from django.core.files.storage import default_storage

        still_used = set(
            DocumentVersion.objects.filter(original_file__in=names).values_list("original_file", flat=True)
        )
        for name in names - still_used:
            default_storage.delete(name)

