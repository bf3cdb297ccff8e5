import pytest
from django.core.exceptions import PermissionDenied
from django.db import ProgrammingError, connection, transaction

from training.datasets.split import SplitError, split_rows
from training.models import DatasetRow, DatasetVersion
from training.policy import dataset_policy, user_may_use_training
from training.services_datasets import dataset_create, dataset_version_create


def qa(q, a):
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


@pytest.fixture
def dataset(ml, credit):
    return dataset_create(actor=ml["credit_admin"], department=credit, name="Credit FAQ")


def test_versions_are_immutable_and_hashed(ml, dataset):
    v1, created = dataset_version_create(actor=ml["credit_admin"], dataset=dataset, payloads=[qa("a", "b")], origin="upload")
    assert created and v1.number == 1 and len(v1.content_sha256) == 64
    same, created = dataset_version_create(actor=ml["credit_admin"], dataset=dataset, payloads=[qa("a", "b")], origin="upload")
    assert not created and same.pk == v1.pk
    v2, created = dataset_version_create(
        actor=ml["credit_admin"], dataset=dataset, payloads=[qa("a", "b"), qa("c", "d")], origin="upload"
    )
    assert created and v2.number == 2 and v2.parent_id == v1.pk and v2.content_sha256 != v1.content_sha256
    assert v2.examples() == [qa("a", "b")["messages"], qa("c", "d")["messages"]]
    dataset.refresh_from_db()
    assert dataset.latest_version_id == v2.pk
    # The database itself refuses edits of a version or its rows.
    for sql in ("UPDATE training_datasetrow SET rejected = 'x'", "DELETE FROM training_datasetversion"):
        with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert DatasetRow.objects.filter(version=v2).count() == 2 and DatasetVersion.objects.count() == 2


def test_policy_scopes_datasets_by_department(ml, credit, hr, dataset):
    hr_set = dataset_create(actor=ml["hr_admin"], department=hr, name="HR")
    visible = lambda u: set(dataset_policy.instances_user_has_permission_for(u, "view"))  # noqa: E731
    assert visible(ml["credit_admin"]) == {dataset}
    assert visible(ml["hr_admin"]) == {hr_set}
    assert visible(ml["ml_engineer"]) == visible(ml["superuser"]) == {dataset, hr_set}
    for user in ("credit_manager", "credit_employee", "reviewer", "outsider"):
        assert visible(ml[user]) == set() and not user_may_use_training(ml[user])
    with pytest.raises(PermissionDenied):
        dataset_create(actor=ml["credit_admin"], department=hr, name="not mine")
    with pytest.raises(PermissionDenied):
        dataset_version_create(actor=ml["hr_admin"], dataset=dataset, payloads=[qa("x", "y")], origin="upload")


def test_split_is_seeded_and_order_independent():
    rows = [qa(f"q{i}", f"a{i}") for i in range(50)]
    train, val = split_rows(rows, validation_ratio=0.2, seed=7)
    assert len(val) == 10 and len(train) == 40
    assert split_rows(list(reversed(rows)), validation_ratio=0.2, seed=7)[1] == list(reversed(val))
    assert split_rows(rows, validation_ratio=0.2, seed=8)[1] != val
    with pytest.raises(SplitError):
        split_rows(rows[:1])


def test_dataset_version_split_gives_messages(ml, dataset):
    from training.datasets.split import dataset_version_split

    version, _ = dataset_version_create(
        actor=ml["credit_admin"], dataset=dataset, payloads=[qa(f"q{i}", f"a{i}") for i in range(10)], origin="upload"
    )
    train, val = dataset_version_split(version, seed=1, validation_fraction=0.2)
    assert len(train) == 8 and len(val) == 2
    assert val[0][0]["role"] == "user" and val[0][-1]["role"] == "assistant"
    assert dataset_version_split(version, seed=1, validation_fraction=0.2) == (train, val)


def test_an_upload_failing_midway_leaves_nothing(ml, credit, monkeypatch):
    import json

    from django.db import IntegrityError

    from training.models import Dataset
    from training.services_datasets import dataset_upload

    def broken_bulk_create(*args, **kwargs):
        raise IntegrityError("disk full")

    monkeypatch.setattr(DatasetRow.objects, "bulk_create", broken_bulk_create)
    content = "\n".join(json.dumps({"question": f"q{i}", "answer": "a"}) for i in range(5)).encode()
    with pytest.raises(IntegrityError):
        dataset_upload(actor=ml["credit_admin"], file_name="d.jsonl", data=content, department=credit, name="d")
    assert Dataset.objects.count() == 0 and DatasetVersion.objects.count() == 0


def test_training_navigation_for_ml_engineers_and_admins(ml):
    from accounts.selectors import navigation_for

    for name in ("ml_engineer", "credit_admin", "hr_admin", "superuser"):
        assert navigation_for(user=ml[name]).training, name
    for name in ("credit_manager", "credit_employee", "reviewer", "outsider"):
        assert not navigation_for(user=ml[name]).training, name
