"""Read-only: the allowlist is edited on its page and sources on theirs, through the services
(encrypted credentials, audit rows); the admin lists and searches."""

from django.contrib import admin

from accounts.admin import ReadOnlyAdmin

from .models import AllowedHost, Source, SourceSync


@admin.register(AllowedHost)
class AllowedHostAdmin(ReadOnlyAdmin):
    list_display = ["host", "port", "source_kind", "allow_private_addresses", "note", "created_at"]
    search_fields = ["host", "note"]


@admin.register(Source)
class SourceAdmin(ReadOnlyAdmin):
    list_display = ["name", "kind", "knowledge_base", "enabled", "schedule_minutes", "next_sync_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]
    exclude = ["dsn_encrypted", "auth_header_encrypted"]


@admin.register(SourceSync)
class SourceSyncAdmin(ReadOnlyAdmin):
    list_display = ["source", "status", "trigger", "created", "updated", "unchanged", "failed", "queued_at"]
    list_filter = ["status", "trigger"]
