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
