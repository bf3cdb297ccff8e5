from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    # Demo accounts ship with a known password: they are refused whenever DEBUG is off.
    is_demo = models.BooleanField(_("demo account"), default=False)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.get_full_name() or self.username


class Department(models.Model):
    name = models.CharField(_("name"), max_length=200)
    name_zh = models.CharField(_("Chinese name"), max_length=200, blank=True)
    code = models.SlugField(_("code"), max_length=50, unique=True)
    parent = models.ForeignKey(
        "self", verbose_name=_("parent"), null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        # Department-scoped capabilities, granted by a membership role or as guardian object
        # permissions (per department) or global permissions (every department).
        permissions = [
            ("view_knowledge", "Can read the department's knowledge"),
            ("manage_knowledge", "Can edit the department's knowledge"),
            ("review_knowledge", "Can review the department's knowledge"),
            ("manage_members", "Can manage the department's people"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        if self.name_zh and (get_language() or "").lower().startswith("zh"):
            return self.name_zh
        return self.name

    def clean(self) -> None:
        ancestor = self.parent
        while ancestor is not None:
            if ancestor.pk == self.pk:
                raise ValidationError({"parent": _("A department cannot be its own ancestor.")})
            ancestor = ancestor.parent


class Role(models.TextChoices):
    ADMIN = "admin", _("Admin")
    KNOWLEDGE_MANAGER = "knowledge_manager", _("Knowledge manager")
    COMPLIANCE_REVIEWER = "compliance_reviewer", _("Compliance reviewer")
    EMPLOYEE = "employee", _("Employee")


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=32, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["department__name", "user__username"]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "department"], name="membership_one_role_per_department"),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.department} · {self.get_role_display()}"


class ApiKey(models.Model):
    """A personal key for the REST API and the OpenAI-compatible /v1 endpoint.

    Only a SHA-256 digest of the key is stored (keys carry 256 random bits, so a fast unsalted
    hash is as safe as a slow one and lets every request look its key up by an index); the
    plain key is shown once, when it is created, and afterwards only its prefix.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(_("name"), max_length=100, blank=True)
    prefix = models.CharField(_("prefix"), max_length=16, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or self.user})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class RateLimitCounter(models.Model):
    """Hits of one limit key (`chat:user:7`, `login:ip:10.0.0.1`, …) in one fixed time window.
    Counted in the database so every web process and worker shares it (no Redis needed)."""

    key = models.CharField(max_length=200)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField(db_index=True)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "window_start"], name="rate_limit_one_row_per_window")]


class DepartmentQuota(models.Model):
    """A department's own chat limits; a field left empty falls back to the settings default."""

    department = models.OneToOneField(Department, on_delete=models.CASCADE, related_name="quota")
    daily_tokens = models.PositiveBigIntegerField(
        _("daily token quota"), null=True, blank=True, help_text=_("Empty: the default; 0: unlimited.")
    )
    user_requests_per_minute = models.PositiveIntegerField(
        _("requests per minute per user"), null=True, blank=True, help_text=_("Empty: the default; 0: unlimited.")
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("department quota")
        verbose_name_plural = _("department quotas")

    def __str__(self) -> str:
        return str(self.department)


class UsageDay(models.Model):
    """Chat usage of one user, charged to one department (none for users without one), on one day."""

    day = models.DateField()
    department = models.ForeignKey(Department, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    requests = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    latency_ms = models.PositiveBigIntegerField(default=0)  # the sum: mean = latency_ms / requests

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "user", "department"], nulls_distinct=False, name="usage_one_row_per_user_department_day"
            )
        ]
        indexes = [models.Index(fields=["department", "day"])]

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
