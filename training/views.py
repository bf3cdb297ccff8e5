from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from accounts.selectors import navigation_for


def index(request):
    if not navigation_for(user=request.user).training:
        raise PermissionDenied
    return render(request, "training/index.html")
