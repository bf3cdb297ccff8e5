"""BM25 postings and collection statistics, and hit-testing sets with their kept runs.

BM25 lives in PostgreSQL so that it scales with the database and obeys the same permission
filter as every other read: a posting copies `knowledge_base_id` and `searchable` from its chunk,
and a partial covering index on `term` serves the query from the index alone.
Collection statistics (N, total length, df) count searchable chunks only; `indexing.py` keeps them
as base rows plus appended deltas, summed on read and rolled up every minute, company-wide and per
knowledge base. A search reads the per-knowledge-base ones summed over what the asker may read: a
word that only another department's knowledge holds changes no score the asker sees.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Bm25Term(models.Model):
    term = models.CharField(max_length=100, unique=True)
    # Searchable chunks containing the term.
    df = models.IntegerField(default=0)

    def __str__(self) -> str:
        return self.term


class Bm25Statistics(models.Model):
    """One row (id 1): searchable chunk count and their total length in terms."""

    chunk_count = models.BigIntegerField(default=0)
    total_length = models.BigIntegerField(default=0)
    # tokenize.signature() of the tokenizer that wrote the postings (set by bm25_reindex).
    tokenizer = models.CharField(max_length=100, blank=True, default="")

    @property
    def average_length(self) -> float:
        return self.total_length / self.chunk_count if self.chunk_count else 0.0


class Bm25KnowledgeBaseStatistics(models.Model):
    """Searchable chunk count and total length of one knowledge base (no foreign key, like the
    postings' copy of it: rows of a deleted knowledge base count nothing a search can read)."""

    knowledge_base_id = models.BigIntegerField(primary_key=True)
    chunk_count = models.BigIntegerField(default=0)
    total_length = models.BigIntegerField(default=0)


class Bm25KnowledgeBaseTerm(models.Model):
    """df of one term within one knowledge base."""

    pk = models.CompositePrimaryKey("term_id", "knowledge_base_id")
    term_id = models.BigIntegerField()
    knowledge_base_id = models.BigIntegerField()
    df = models.IntegerField(default=0)


class Bm25StatisticsDelta(models.Model):
    """A change to the statistics of one knowledge base, appended by a writer (no shared row
    lock); readers add the deltas to the base rows, `indexing.statistics_rollup` folds them in."""

    knowledge_base_id = models.BigIntegerField()
    chunk_count = models.BigIntegerField()
    total_length = models.BigIntegerField()


class Bm25TermDelta(models.Model):
    """A change to one term's df, appended like `Bm25StatisticsDelta` (no foreign key: terms are
    only ever deleted with their deltas, by the re-index)."""

    term_id = models.BigIntegerField(db_index=True)
    knowledge_base_id = models.BigIntegerField()
    df = models.IntegerField()


class Bm25Posting(models.Model):
    pk = models.CompositePrimaryKey("chunk", "term")
    chunk = models.ForeignKey("knowledge.Chunk", on_delete=models.CASCADE, related_name="+")
    term = models.ForeignKey(Bm25Term, on_delete=models.CASCADE, related_name="+", db_index=False)
    knowledge_base = models.ForeignKey(
        "knowledge.KnowledgeBase", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    tf = models.PositiveIntegerField()
    # Length of the chunk in terms, copied to every posting so that scoring reads the index alone.
    length = models.PositiveIntegerField()
    searchable = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(
                fields=["term"],
                include=["chunk", "tf", "length", "knowledge_base"],
                condition=models.Q(searchable=True),
                name="bm25posting_term_searchable",
            )
        ]


class HitTestSet(models.Model):
    """Saved queries with the documents a good search should find, for one knowledge base."""

    knowledge_base = models.ForeignKey(
        "knowledge.KnowledgeBase", verbose_name=_("knowledge base"), on_delete=models.CASCADE,
        related_name="hit_test_sets",
    )
    name = models.CharField(_("name"), max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["knowledge_base", "name"]
        verbose_name = _("hit-test set")
        verbose_name_plural = _("hit-test sets")

    def __str__(self) -> str:
        return self.name


class HitTestQuery(models.Model):
    test_set = models.ForeignKey(HitTestSet, on_delete=models.CASCADE, related_name="queries")
    query = models.CharField(_("query"), max_length=1000)
    expected_documents = models.ManyToManyField(
        "knowledge.Document", verbose_name=_("expected documents"), related_name="+"
    )

    class Meta:
        ordering = ["id"]
        verbose_name = _("hit-test query")
        verbose_name_plural = _("hit-test queries")

    def __str__(self) -> str:
        return self.query


class HitTestRunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class HitTestRun(models.Model):
    """One evaluation of a set; every run is kept so that the history shows drops."""

    test_set = models.ForeignKey(HitTestSet, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(
        _("status"), max_length=16, choices=HitTestRunStatus.choices, default=HitTestRunStatus.QUEUED
    )
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # {"bm25": {"recall@1": .., "recall@5": .., "recall@10": .., "mrr@10": ..}, "dense": {...}, ...}
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)
    # What the run searched with: retrieval settings, embedding model, searchable chunk count.
    context = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # Background-work bookkeeping (core.jobs, kind "hit_test_run"): a run whose worker dies is
    # failed by the reaper instead of staying "running".
    progress = models.FloatField(default=0.0)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("hit-test run")
        verbose_name_plural = _("hit-test runs")

    def __str__(self) -> str:
        return f"{self.test_set} {self.created_at:%Y-%m-%d %H:%M} ({self.status})"


class ChunkRetrieval(models.Model):
    """The last day search returned a chunk (written in batches by retrieval/usage.py's roll-up)."""

    chunk = models.OneToOneField("knowledge.Chunk", primary_key=True, on_delete=models.CASCADE, related_name="retrieval")
    last_retrieved = models.DateField()

    class Meta:
        indexes = [models.Index(fields=["last_retrieved"], name="retrieval_chunk_last_day")]
