from typing import Any

from django.db.models import QuerySet

from accounts.policy import PermissionPolicy, is_active_user, is_company_admin

from .models import Job


class JobPolicy(PermissionPolicy[Job]):
    """A job is visible to whoever started it and to company admins."""

    model = Job
    actions = frozenset({"view", "add"})

    def user_has_permission(self, user: Any, action: str) -> bool:
        self._check_action(action)
        if action == "add":
            return is_company_admin(user)
        return super().user_has_permission(user, action)

    def instances_user_has_permission_for(self, user: Any, action: str) -> QuerySet[Job]:
        self._check_action(action)
        if not is_active_user(user):
            return Job.objects.none()
        if is_company_admin(user):
            return Job.objects.all()
        if action == "view":
            return Job.objects.filter(created_by=user)
        return Job.objects.none()


job_policy = JobPolicy()
