from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from guardian.admin import GuardedModelAdmin

from django.utils.translation import gettext_lazy as _

from .models import ApiKey, Department, Membership, User
from .services import api_key_revoke


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["department"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    inlines = [MembershipInline]
    list_display = ["username", "email", "first_name", "last_name", "is_staff", "is_superuser", "is_demo"]
    fieldsets = (*BaseUserAdmin.fieldsets, ("Demo", {"fields": ["is_demo"]}))


@admin.register(Department)
class DepartmentAdmin(GuardedModelAdmin):
    list_display = ["name", "name_zh", "code", "parent"]
    search_fields = ["name", "name_zh", "code"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "department", "role", "created_at"]
    list_filter = ["role", "department"]
    autocomplete_fields = ["user", "department"]


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

    @admin.action(description=_("Revoke the selected API keys"))
    def revoke(self, request, queryset):
        for api_key in queryset:
            api_key_revoke(actor=request.user, api_key=api_key, ip=request.META.get("REMOTE_ADDR"))
