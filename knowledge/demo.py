"""Demo knowledge for `make run`: knowledge bases of Credit and HR, in Chinese and English, with
published documents, one in review, a draft, and histories of several versions. Idempotent: a
knowledge base or document that already exists is left alone. Everything goes through the services,
so the audit log and the review history look as they would after real use."""

from __future__ import annotations

from django.db import transaction

from accounts.models import Department, User

from . import services
from .models import Document, KnowledgeBase

LOAN_APPROVAL_V1 = """# 个人贷款审批流程

1. 客户经理收集申请材料：身份证、收入证明、征信报告。
2. 风险经理审核材料，评估还款能力。
3. 金额在 50 万元以下的贷款由支行行长审批。
"""

LOAN_APPROVAL_V2 = """# 个人贷款审批流程

1. 客户经理收集申请材料：身份证、收入证明、征信报告。
2. 风险经理审核材料，评估还款能力，**债务收入比不得超过 50%**。
3. 金额在 30 万元以下的贷款由支行行长审批；超过 30 万元的报分行信贷委员会。
"""

LOAN_APPROVAL_V3 = LOAN_APPROVAL_V2 + """4. 审批结果须在 5 个工作日内通知客户。
"""

LTV_V1 = """# Loan-to-value limits

| Collateral | Maximum LTV |
| --- | --- |
| Residential property | 70% |
| Commercial property | 50% |
"""

LTV_V2 = """# Loan-to-value limits

| Collateral | Maximum LTV |
| --- | --- |
| Residential property (first home) | 70% |
| Residential property (second home) | 60% |
| Commercial property | 50% |

Exceptions need the approval of the credit committee.
"""

AML = """# 反洗钱检查清单 (AML checklist)

- 核实客户身份 (verify the customer's identity)
- 单笔现金交易超过 5 万元须报告 (report cash transactions above CNY 50,000)
- 可疑交易 24 小时内上报合规部 (escalate suspicious activity to Compliance within 24 hours)
"""

LEAVE_V1 = """# Annual leave policy

Employees receive 5 days of paid annual leave after one year of service.
"""

LEAVE_V2 = """# Annual leave policy

Employees receive 5 days of paid annual leave after one year of service,
10 days after ten years, and 15 days after twenty years.
"""

LEAVE_V3 = LEAVE_V2 + """
Unused leave may be carried over to the first quarter of the next year.
"""

EXPENSES = """# 差旅报销制度

- 出差前须在系统中提交申请。
- 住宿标准：一线城市每晚不超过 600 元。
- 报销须在返回后 30 日内提交发票。
"""


def _publish(document: Document, manager: User, reviewer: User, comment: str = "") -> None:
    review = services.document_submit(actor=manager, document=document)
    if review is not None:
        services.review_approve(actor=reviewer, review=review, comment=comment)


def _edit(document: Document, manager: User, content: str, note: str) -> None:
    document.refresh_from_db()
    services.document_version_create(
        actor=manager,
        document=document,
        content=content,
        base_version_number=document.latest_version.number,
        change_note=note,
    )


def _knowledge_base(actor: User, department: Department, name: str, **kwargs) -> tuple[KnowledgeBase, bool]:
    existing = KnowledgeBase.objects.filter(department=department, name=name).first()
    if existing is not None:
        return existing, False
    return services.knowledge_base_create(actor=actor, department=department, name=name, **kwargs), True


def _document(kb: KnowledgeBase, actor: User, title: str, content: str, **kwargs) -> Document | None:
    """The new document, or None when it exists already (then the loader leaves it alone)."""
    if Document.objects.filter(knowledge_base=kb, title=title).exists():
        return None
    return services.document_create(actor=actor, knowledge_base=kb, title=title, content=content, **kwargs)


@transaction.atomic
def load() -> dict[str, int]:
    credit = Department.objects.get(code="credit")
    hr = Department.objects.get(code="hr")
    credit_manager = User.objects.get(username="credit_manager")
    hr_manager = User.objects.get(username="hr_manager")
    reviewer = User.objects.get(username="compliance_reviewer")
    before = Document.objects.count()

    credit_kb, _ = _knowledge_base(
        credit_manager, credit, "信贷政策 Credit policies",
        description="贷款审批、额度与反洗钱规定。Loan approval, limits and AML rules.",
    )
    if doc := _document(credit_kb, credit_manager, "个人贷款审批流程", LOAN_APPROVAL_V1, tags=["贷款", "审批"]):
        _publish(doc, credit_manager, reviewer, "同意发布。")
        _edit(doc, credit_manager, LOAN_APPROVAL_V2, "下调支行审批额度，增加债务收入比要求")
        _publish(doc, credit_manager, reviewer, "符合新的监管要求。")
        _edit(doc, credit_manager, LOAN_APPROVAL_V3, "增加通知时限")
    if doc := _document(credit_kb, credit_manager, "Loan-to-value limits", LTV_V1, tags=["loans", "collateral"]):
        _publish(doc, credit_manager, reviewer, "Approved.")
        _edit(doc, credit_manager, LTV_V2, "Separate limit for second homes")
        services.document_submit(actor=credit_manager, document=doc)  # waits in the review inbox
    if doc := _document(credit_kb, credit_manager, "反洗钱检查清单 AML checklist", AML, tags=["AML", "合规"]):
        _publish(doc, credit_manager, reviewer)

    hr_kb, created = _knowledge_base(
        hr_manager, hr, "员工手册 Employee handbook",
        description="Policies every employee should know. 全体员工须知的制度。",
    )
    if created:
        services.knowledge_base_update(actor=hr_manager, knowledge_base=hr_kb, shared_company_wide=True)
    if doc := _document(hr_kb, hr_manager, "Annual leave policy", LEAVE_V1, tags=["leave"]):
        _publish(doc, hr_manager, reviewer)
        _edit(doc, hr_manager, LEAVE_V2, "Leave grows with seniority")
        _publish(doc, hr_manager, reviewer)
        _edit(doc, hr_manager, LEAVE_V3, "Allow carry-over")
        _publish(doc, hr_manager, reviewer)
    _document(hr_kb, hr_manager, "差旅报销制度", EXPENSES, tags=["报销"])  # a draft

    return {"knowledge_bases": KnowledgeBase.objects.count(), "documents_created": Document.objects.count() - before}
