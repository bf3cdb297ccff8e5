from accounts import demo as accounts_demo
from core.models import AuditEntry
from knowledge import demo
from knowledge.models import Document, DocumentState, DocumentVersion, KnowledgeBase, Review, ReviewState


def test_demo_knowledge_loads_once_and_is_idempotent(db):
    accounts_demo.load()
    first = demo.load()
    counts = (KnowledgeBase.objects.count(), Document.objects.count(), DocumentVersion.objects.count(),
              AuditEntry.objects.count())
    assert first["documents_created"] == 5
    assert demo.load()["documents_created"] == 0
    assert counts == (KnowledgeBase.objects.count(), Document.objects.count(), DocumentVersion.objects.count(),
                      AuditEntry.objects.count())

    states = dict(Document.objects.values_list("title", "state"))
    assert states["反洗钱检查清单 AML checklist"] == DocumentState.PUBLISHED
    assert states["Loan-to-value limits"] == DocumentState.IN_REVIEW
    assert states["差旅报销制度"] == DocumentState.DRAFT
    loans = Document.objects.get(title="个人贷款审批流程")
    assert (loans.latest_version.number, loans.live_version.number) == (3, 2)
    assert Review.objects.filter(state=ReviewState.OPEN).count() == 1
    assert set(KnowledgeBase.objects.values_list("department__code", flat=True)) == {"credit", "hr"}
    assert KnowledgeBase.objects.get(department__code="hr").shared_company_wide
