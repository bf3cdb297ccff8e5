"""The Django admin lists and searches; it never writes around the policy or the audit log.

Every protected model is read-only here (`ReadOnlyAdmin`): users, memberships and roles, groups
and their permissions are changed on the People pages, through `accounts.services`, which audit.
The one write left is deleting a department, and it goes through `department_delete` (policy
checked, audited). API tokens are not listed at all: their keys are credentials.
"""

from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from django.utils.translation import gettext_lazy as _

from core.audit import client_ip

from . import services
from .models import ApiKey, Department, Membership, User
from .policy import department_policy
from .services import api_key_revoke


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MembershipInline(ReadOnlyInline):
    model = Membership


@admin.register(User)
class UserAdmin(ReadOnlyAdmin, BaseUserAdmin):
    inlines = [MembershipInline]
    list_display = ["username", "email", "first_name", "last_name", "is_staff", "is_superuser", "is_demo"]
    fieldsets = (*BaseUserAdmin.fieldsets, ("Demo", {"fields": ["is_demo"]}))
    exclude = None
    readonly_fields = ["password"]


@admin.register(Department)
class DepartmentAdmin(ReadOnlyAdmin):
    list_display = ["name", "name_zh", "code", "parent"]
    search_fields = ["name", "name_zh", "code"]

    def has_delete_permission(self, request, obj=None):
        if obj is None:
            return department_policy.user_has_permission(request.user, "add")  # company admins
        return department_policy.user_has_permission_for_instance(request.user, "delete", obj)

    def get_deleted_objects(self, objs, request):
        # Memberships go with the department inside the service (which audits them), although
        # their own admin is read-only; protected objects (knowledge, audit rows) still refuse.
        to_delete, model_count, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return to_delete, model_count, set(), protected

    def delete_model(self, request, obj):
        try:
            services.department_delete(actor=request.user, department=obj, ip=client_ip(request))
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)

    def delete_queryset(self, request, queryset):
        # "Delete selected" too: one service call (and audit row) per department.
        for department in queryset:
            self.delete_model(request, department)


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ["user", "department", "role", "created_at"]
    list_filter = ["role", "department"]


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(ReadOnlyAdmin, BaseGroupAdmin):
    pass


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created by their owners (profile page, API); here they can only be seen and revoked."""

    list_display = ["prefix", "name", "user", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["prefix", "name", "user__username"]
    readonly_fields = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    exclude = ["digest"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # revoking is the one write, through the service (audited)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Revoke the selected API keys"))
    def revoke(self, request, queryset):
        for api_key in queryset:
            api_key_revoke(actor=request.user, api_key=api_key, ip=request.META.get("REMOTE_ADDR"))
