"""The admin usage page: tokens by department and day, and the limits form."""

import json
from datetime import timedelta

from django.test import Client
from django.utils import timezone

from accounts.limits import usage_record
from accounts.models import DepartmentQuota


def test_usage_page_charts_tokens_by_department_and_day(people, client_for, credit, hr):
    today = timezone.now()
    usage_record(user=people["credit_employee"], prompt_tokens=100, completion_tokens=20, latency_ms=300, now=today)
    usage_record(user=people["credit_manager"], prompt_tokens=50, completion_tokens=5, latency_ms=100, now=today)
    usage_record(user=people["hr_employee"], prompt_tokens=7, completion_tokens=3, now=today - timedelta(days=2))
    page = client_for(people["superuser"]).get("/people/usage/?days=7")
    assert page.status_code == 200
    html = page.content.decode()
    data = json.loads(html.split('id="usage-chart-data" type="application/json">')[1].split("</script>")[0])
    assert len(data["labels"]) == 7 and data["labels"][-1] == timezone.localdate().isoformat()
    series = {s["label"]: s["data"] for s in data["series"]}
    assert series["Credit"][-1] == 175 and series["HR"][-3] == 10 and sum(series["HR"]) == 10
    assert "Compliance" not in series  # no usage, no series (but a row in the table)
    assert "usage_chart.js" in html and "<script>" not in html  # strict CSP: no inline script
    assert "<td>200</td>" in html  # mean latency of Credit: (300 + 100) / 2
    zh = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    zh.force_login(people["superuser"])
    zh_html = zh.get("/people/usage/").content.decode()
    assert "用量与限额" in zh_html and "信贷部" in zh_html


def test_usage_page_and_limits_are_for_company_admins(people, client_for, credit):
    for name in ("credit_admin", "credit_manager", "credit_employee"):
        assert client_for(people[name]).get("/people/usage/").status_code == 403, name
        response = client_for(people[name]).post(f"/people/usage/departments/{credit.pk}/limits/", {"daily_tokens": 1})
        assert response.status_code == 403
    assert not DepartmentQuota.objects.exists()


def test_admin_sets_a_departments_limits(people, client_for, credit):
    client = client_for(people["superuser"])
    response = client.post(
        f"/people/usage/departments/{credit.pk}/limits/", {"daily_tokens": "5000", "user_requests_per_minute": ""}, follow=True
    )
    assert "were saved" in response.content.decode()
    quota = DepartmentQuota.objects.get(department=credit)
    assert (quota.daily_tokens, quota.user_requests_per_minute) == (5000, None)
    bad = client.post(f"/people/usage/departments/{credit.pk}/limits/", {"daily_tokens": "-3"}, follow=True)
    assert "were not saved" in bad.content.decode()
    quota.refresh_from_db()
    assert quota.daily_tokens == 5000
    assert client.post("/people/usage/departments/999999/limits/", {"daily_tokens": "1"}).status_code == 404
