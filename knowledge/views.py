from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from accounts.policy import Capability, departments_for
from accounts.selectors import navigation_for


def index(request):
    if not navigation_for(user=request.user).knowledge:
        raise PermissionDenied
    return render(
        request,
        "knowledge/index.html",
        {
            "readable": departments_for(request.user, Capability.VIEW_KNOWLEDGE),
            "editable": departments_for(request.user, Capability.MANAGE_KNOWLEDGE),
        },
    )


def compliance(request):
    if not navigation_for(user=request.user).compliance:
        raise PermissionDenied
    return render(
        request, "knowledge/compliance.html", {"reviewed": departments_for(request.user, Capability.REVIEW_KNOWLEDGE)}
    )
