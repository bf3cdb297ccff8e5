"""Demo departments and users. Idempotent: running it again changes nothing."""

import os

from django.contrib.auth.models import Permission
from django.db import transaction

from .models import Department, Membership, Role, User

DEPARTMENTS = [
    ("credit", "Credit", "信贷部"),
    ("hr", "HR", "人力资源部"),
    ("compliance", "Compliance", "合规部"),
]

USERS = [
    # username, first name, department code, role
    ("credit_manager", "Chen Li", "credit", Role.KNOWLEDGE_MANAGER),
    ("credit_employee", "Wang Fang", "credit", Role.EMPLOYEE),
    ("hr_manager", "Zhang Wei", "hr", Role.KNOWLEDGE_MANAGER),
    ("hr_employee", "Liu Yang", "hr", Role.EMPLOYEE),
    ("compliance_reviewer", "Zhao Min", "compliance", Role.COMPLIANCE_REVIEWER),
]


def demo_password() -> str:
    return os.environ.get("DEMO_PASSWORD", "demo12345")


@transaction.atomic
def load() -> dict[str, int]:
    password = demo_password()
    departments = {}
    for code, name, name_zh in DEPARTMENTS:
        departments[code], _ = Department.objects.get_or_create(code=code, defaults={"name": name, "name_zh": name_zh})

    created = 0
    admin, was_created = User.objects.get_or_create(
        username="admin", defaults={"is_superuser": True, "is_staff": True, "is_demo": True, "first_name": "Admin"}
    )
    if was_created:
        admin.set_password(password)
        admin.save()
        created += 1

    for username, first_name, code, role in USERS:
        user, was_created = User.objects.get_or_create(
            username=username, defaults={"first_name": first_name, "is_demo": True}
        )
        if was_created:
            user.set_password(password)
            user.save()
            created += 1
        Membership.objects.get_or_create(user=user, department=departments[code], defaults={"role": role})

    # The compliance reviewer reviews every department: a global guardian/Django permission.
    reviewer = User.objects.get(username="compliance_reviewer")
    reviewer.user_permissions.add(Permission.objects.get(codename="review_knowledge", content_type__app_label="accounts"))
    return {"departments": len(departments), "users_created": created}
