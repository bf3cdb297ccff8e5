from django.contrib import admin

from accounts.admin import ReadOnlyAdmin

from .models import AuditEntry, Job


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "status", "progress", "created_at", "finished_at"]
    list_filter = ["kind", "status"]
    readonly_fields = [f.name for f in Job._meta.fields]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor_username", "action", "object_repr", "department"]
    list_filter = ["action"]
