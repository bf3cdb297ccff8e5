from typing import Any

from django.db.models import QuerySet

from .models import Job
from .policy import job_policy


def job_list(*, user: Any, limit: int = 20) -> QuerySet[Job]:
    return job_policy.instances_user_has_permission_for(user, "view").order_by("-created_at")[:limit]


def job_get(*, user: Any, job_id: Any) -> Job:
    return job_policy.instance_for_user(user, "view", job_id)
