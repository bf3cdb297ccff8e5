"""The allowlist is editable here too (company admins); sources are listed read-only because
their credentials are only written through the services (encrypted, audited)."""

from django.contrib import admin

from .models import AllowedHost, Source, SourceSync


@admin.register(AllowedHost)
class AllowedHostAdmin(admin.ModelAdmin):
    list_display = ["host", "port", "source_kind", "allow_private_addresses", "note", "created_at"]
    search_fields = ["host", "note"]


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "knowledge_base", "enabled", "schedule_minutes", "next_sync_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]
    exclude = ["dsn_encrypted", "auth_header_encrypted"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SourceSync)
class SourceSyncAdmin(admin.ModelAdmin):
    list_display = ["source", "status", "trigger", "created", "updated", "unchanged", "failed", "queued_at"]
    list_filter = ["status", "trigger"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
