"""Notifications: in the app (the bell) and by e-mail through Django's e-mail backend. One per
user, event and period (a unique constraint), never to a user who turned that kind off."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Membership, Role

from .models import Notification, NotificationOptOut

logger = logging.getLogger(__name__)
EPOCH = dt.date(2020, 1, 1)


def period_days() -> int:
    return int(getattr(settings, "HEALTH_PERIOD_DAYS", 30))


def period_of(day: dt.date) -> str:
    """The period a day falls in (periods of HEALTH_PERIOD_DAYS days from a fixed epoch)."""
    return f"p{(day - EPOCH).days // period_days()}"


def department_managers(department_ids) -> dict[int, list[Any]]:
    """Active knowledge managers and admins of each department (by membership role)."""
    out: dict[int, list[Any]] = {}
    for membership in Membership.objects.filter(
        department_id__in=list(department_ids), role__in=[Role.KNOWLEDGE_MANAGER, Role.ADMIN], user__is_active=True
    ).select_related("user"):
        out.setdefault(membership.department_id, []).append(membership.user)
    return out


def notification_send(*, user: Any, kind: str, event: str, message: str, url: str = "", subject: str = "",
                      day: dt.date | None = None):
    """Create the notification of this event and period unless it exists or the kind is off;
    e-mail it once, after the row commits. Returns the new row or None."""
    if NotificationOptOut.objects.filter(user=user, kind=kind).exists():
        return None
    period = period_of(day or timezone.localdate())
    try:
        with transaction.atomic():
            row = Notification.objects.create(user=user, kind=kind, event=event[:100], period=period,
                                              message=message[:500], subject=subject[:300], url=url[:300])
    except IntegrityError:
        return None  # already notified of this event in this period
    if user.email:
        transaction.on_commit(lambda: _email(row.pk))
    return row


def _email(pk: int) -> None:
    row = Notification.objects.select_related("user").get(pk=pk)
    try:
        send_mail(subject=row.message[:150], message=f"{row.message}\n\n{row.url}", from_email=None,
                  recipient_list=[row.user.email])
    except Exception:  # the bell still shows it; a mail server outage must not fail the scan
        logger.exception("Could not e-mail notification %s", pk)
        return
    Notification.objects.filter(pk=pk).update(emailed=True)
