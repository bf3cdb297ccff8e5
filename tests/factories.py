import itertools

import factory
from django.contrib.auth.models import Permission
from guardian.shortcuts import assign_perm

from accounts.models import Department, Membership, Role, User

PASSWORD = "s3cret-pass-123"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")

    @factory.post_generation
    def password(obj, create, extracted, **kwargs):
        obj.set_password(extracted or PASSWORD)
        if create:
            obj.save(update_fields=["password"])


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department
        django_get_or_create = ("code",)

    name = factory.Sequence(lambda n: f"Department {n}")
    code = factory.Sequence(lambda n: f"dept{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    department = factory.SubFactory(DepartmentFactory)
    role = Role.EMPLOYEE


def member(department: Department, role: str, username: str | None = None) -> User:
    kwargs = {"username": username} if username else {}
    user = UserFactory(**kwargs)
    MembershipFactory(user=user, department=department, role=role)
    return user


def grant_global(user: User, codename: str) -> User:
    user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="accounts"))
    return User.objects.get(pk=user.pk)  # drop the permission cache


def grant_object(user: User, codename: str, department: Department) -> User:
    assign_perm(f"accounts.{codename}", user, department)
    return User.objects.get(pk=user.pk)


# --- knowledge ------------------------------------------------------------------------------------


class KnowledgeBaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "knowledge.KnowledgeBase"
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Knowledge base {n}")
    department = factory.SubFactory(DepartmentFactory)

    @factory.post_generation
    def shared_with(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.shared_with.set(extracted)


_document_numbers = itertools.count(1)


def document(knowledge_base, author: User, content: str = "v1 text", title: str | None = None, **kwargs):
    """A document created through the service (v1, draft, audited), as a manager would."""
    from knowledge.services import document_create

    title = title or f"Document {next(_document_numbers)}"
    return document_create(actor=author, knowledge_base=knowledge_base, title=title, content=content, **kwargs)


def published_document(knowledge_base, author: User, reviewer: User, content: str = "v1 text", **kwargs):
    """A document whose v1 went through review and is live."""
    from knowledge.services import document_submit, review_approve

    doc = document(knowledge_base, author, content=content, **kwargs)
    review = document_submit(actor=author, document=doc)
    if review is not None:
        review_approve(actor=reviewer, review=review)
    doc.refresh_from_db()
    return doc


def ingest(version_id: int):
    """Run the real ingestion of one version in this process (as a worker would) and return its
    VersionIngestion row."""
    from knowledge.ingestion.services import versions_ingest_run
    from knowledge.models import VersionIngestion

    versions_ingest_run(version_ids=[version_id])
    return VersionIngestion.objects.filter(version_id=version_id).first()
