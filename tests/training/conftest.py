import pytest

from accounts.models import Role
from tests.factories import member


@pytest.fixture
def ml(people, credit, hr):
    """Training users: a Credit department admin, an HR admin, an ML engineer (global permission)."""
    from django.contrib.auth.models import Permission

    from accounts.models import User

    engineer = member(credit, Role.EMPLOYEE, "ml_engineer")
    engineer.user_permissions.add(Permission.objects.get(codename="use_training", content_type__app_label="training"))
    return {
        **people,
        "hr_admin": member(hr, Role.ADMIN, "hr_admin"),
        "ml_engineer": User.objects.get(pk=engineer.pk),
    }
