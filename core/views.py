from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseServerError
from django.shortcuts import redirect, render
from django.template import loader
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.policy import is_company_admin
from accounts.selectors import user_memberships

from . import selectors, services


def home(request):
    return render(request, "core/home.html", {"memberships": user_memberships(user=request.user)})


def system(request):
    if not is_company_admin(request.user):
        raise PermissionDenied
    return render(request, "core/system.html", {"jobs": selectors.job_list(user=request.user)})


@require_POST
def system_check_start(request):
    job = services.job_create(actor=request.user, kind="system_check", params={"echo": "hello"})
    messages.info(request, _("A worker check was queued."))
    return redirect("core:job_detail", job_id=job.pk)


def job_detail(request, job_id):
    job = selectors.job_get(user=request.user, job_id=job_id)
    template = "core/_job_status.html" if request.htmx else "core/job_detail.html"
    return render(request, template, {"job": job})


@login_not_required
def permission_denied(request, exception=None):
    return render(request, "403.html", status=403)


@login_not_required
def page_not_found(request, exception=None):
    return render(request, "404.html", status=404)


@login_not_required
def server_error(request):
    # No context processors here: the error may come from them.
    return HttpResponseServerError(loader.get_template("500.html").render())
