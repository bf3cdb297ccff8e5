from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from guardian.admin import GuardedModelAdmin

from .models import Department, Membership, User


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
