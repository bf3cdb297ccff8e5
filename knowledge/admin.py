"""Read-mostly admin: versions are append-only and every workflow goes through the services, so
the Django admin lists and searches but does not edit knowledge."""

from django.contrib import admin

from accounts.admin import ReadOnlyAdmin

from .models import Document, DocumentVersion, EditLock, KnowledgeBase, Review, VersionPublication


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(ReadOnlyAdmin):
    list_display = ["name", "department", "shared_company_wide", "review_required", "created_at"]
    list_filter = ["department", "shared_company_wide", "review_required"]
    search_fields = ["name"]


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdmin):
    list_display = ["title", "knowledge_base", "state", "owner", "updated_at"]
    list_filter = ["state", "knowledge_base__department"]
    search_fields = ["title"]
    list_select_related = ["knowledge_base", "owner"]


@admin.register(DocumentVersion)
class DocumentVersionAdmin(ReadOnlyAdmin):
    list_display = ["document", "number", "author", "change_note", "created_at"]
    list_select_related = ["document", "author"]
    search_fields = ["document__title", "change_note"]


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    list_display = ["document", "version", "state", "requested_by", "decided_by", "created_at"]
    list_filter = ["state"]
    list_select_related = ["document", "version", "requested_by", "decided_by"]


@admin.register(EditLock)
class EditLockAdmin(ReadOnlyAdmin):
    list_display = ["document", "owner", "acquired_at"]


@admin.register(VersionPublication)
class VersionPublicationAdmin(ReadOnlyAdmin):
    list_display = ["version", "published_at"]
    list_select_related = ["version"]
