from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import i18n
from django.views.decorators.http import require_POST

from core.audit import client_ip

from . import limits, selectors, services
from .forms import ApiKeyForm, DepartmentForm, LoginForm, MembershipForm, QuotaForm, UserCreateForm
from .policy import api_key_policy, department_policy, is_company_admin, membership_policy, user_policy


class LoginView(auth_views.LoginView):
    """The sign-in form, refused for a while after too many failures from one IP or for one username."""

    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        try:
            limits.login_guard(ip=client_ip(request), username=username)
        except limits.RateLimited as refusal:
            form = self.get_form()
            form.errors.clear()
            form.add_error(None, refusal.message)
            response = self.render_to_response(self.get_context_data(form=form), status=429)
            response["Retry-After"] = str(refusal.retry_after)
            return response
        return super().post(request, *args, **kwargs)


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:profile")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Your password was changed."))
        return response


set_language = login_not_required(i18n.set_language)


def _profile_context(request, **extra):
    return {
        "memberships": selectors.user_memberships(user=request.user),
        "api_keys": selectors.api_key_list(user=request.user),
        "api_key_form": ApiKeyForm(),
        **extra,
    }


def profile(request):
    return render(request, "accounts/profile.html", _profile_context(request))


@require_POST
def api_key_create(request):
    form = ApiKeyForm(request.POST)
    if form.is_valid():
        try:
            api_key, key = services.api_key_create(user=request.user, name=form.cleaned_data["name"], ip=client_ip(request))
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("A new API key was created. Copy it now: it will not be shown again."))
            # Rendered, not redirected: the plain key must never travel in a URL or the session.
            return render(request, "accounts/profile.html", _profile_context(request, new_key=key, new_api_key=api_key))
    return render(request, "accounts/profile.html", _profile_context(request, api_key_form=form), status=400)


@require_POST
def api_key_revoke(request, pk):
    api_key = api_key_policy.instance_for_user(request.user, "delete", pk)
    services.api_key_revoke(actor=request.user, api_key=api_key, ip=client_ip(request))
    messages.success(request, _("The API key %(prefix)s… was revoked.") % {"prefix": api_key.prefix})
    return redirect("accounts:profile")


def _require_people_admin(request):
    if not selectors.navigation_for(user=request.user).admin:
        raise PermissionDenied


def _people_context(request, **forms):
    user = request.user
    managed = selectors.managed_departments(user=user)
    people = list(selectors.people_list(user=user))
    can_change_users = is_company_admin(user)
    context = {
        "departments": selectors.department_list(user=user),
        "people": people,
        "can_add_department": department_policy.user_has_permission(user, "add"),
        "can_add_user": user_policy.user_has_permission(user, "add"),
        "can_change_users": can_change_users,
        "changeable_user_ids": {p.pk for p in people if can_change_users and services.user_active_changeable(actor=user, user=p)},
        "department_form": DepartmentForm(prefix="dept"),
        "user_form": UserCreateForm(prefix="user", departments=managed),
        "membership_form": MembershipForm(
            prefix="member",
            users=user_policy.instances_user_has_permission_for(user, "view").order_by("username"),
            departments=managed,
        ),
        "managed_department_ids": set(managed.values_list("pk", flat=True)),
    }
    context.update(forms)
    return context


def people(request):
    _require_people_admin(request)
    return render(request, "accounts/people.html", _people_context(request))


@require_POST
def department_create(request):
    _require_people_admin(request)
    form = DepartmentForm(request.POST, prefix="dept")
    if form.is_valid():
        try:
            department = services.department_create(actor=request.user, ip=client_ip(request), **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("Department “%(name)s” was created.") % {"name": department.display_name})
            return redirect("people:index")
    return render(request, "accounts/people.html", _people_context(request, department_form=form), status=400)


@require_POST
def user_create(request):
    _require_people_admin(request)
    managed = selectors.managed_departments(user=request.user)
    form = UserCreateForm(request.POST, prefix="user", departments=managed)
    if form.is_valid():
        try:
            new_user = services.user_create(actor=request.user, ip=client_ip(request), **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("User “%(name)s” was created.") % {"name": new_user.username})
            return redirect("people:index")
    return render(request, "accounts/people.html", _people_context(request, user_form=form), status=400)


@require_POST
def user_set_active(request, pk):
    """Deactivate or reactivate an account (POST active=0 or 1)."""
    _require_people_admin(request)
    person = user_policy.instance_for_user(request.user, "change", pk)
    values = request.POST.getlist("active")
    if values not in (["0"], ["1"]):
        return HttpResponseBadRequest(_("Say active=0 (deactivate) or active=1 (reactivate)."))
    active = values == ["1"]
    try:
        revoked = services.user_set_active(actor=request.user, user=person, active=active, ip=client_ip(request))
    except PermissionDenied:
        messages.error(request, _("You may not change this account."))
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        if active:
            messages.success(request, _("%(name)s may sign in again. Their old API keys stay revoked.") % {"name": person.username})
        else:
            messages.success(request, ngettext(
                "%(name)s was deactivated: they can no longer sign in, and %(n)d API key was revoked.",
                "%(name)s was deactivated: they can no longer sign in, and %(n)d API keys were revoked.", revoked,
            ) % {"name": person.username, "n": revoked})
    if request.htmx:  # the confirmed htmx post: the whole page again, with its message
        response = HttpResponse(status=204)
        response["HX-Redirect"] = reverse("people:index")
        return response
    return redirect("people:index")


@require_POST
def membership_set(request):
    _require_people_admin(request)
    managed = selectors.managed_departments(user=request.user)
    form = MembershipForm(
        request.POST,
        prefix="member",
        users=user_policy.instances_user_has_permission_for(request.user, "view"),
        departments=managed,
    )
    if form.is_valid():
        services.membership_set(actor=request.user, ip=client_ip(request), **form.cleaned_data)
        messages.success(request, _("The role was saved."))
        return redirect("people:index")
    return render(request, "accounts/people.html", _people_context(request, membership_form=form), status=400)


@require_POST
def membership_delete(request, pk):
    _require_people_admin(request)
    membership = membership_policy.instance_for_user(request.user, "view", pk)
    services.membership_delete(actor=request.user, membership=membership, ip=client_ip(request))
    if request.htmx:
        return render(request, "accounts/_empty.html")
    messages.success(request, _("The membership was removed."))
    return redirect("people:index")


USAGE_DAYS = (7, 14, 30, 90)


def usage(request):
    """Chat usage by department and day (a chart and a table) and each department's limits."""
    if not is_company_admin(request.user):
        raise PermissionDenied
    try:
        days = int(request.GET.get("days", 14))
    except ValueError:
        days = 14
    days = days if days in USAGE_DAYS else 14
    report = selectors.usage_report(user=request.user, days=days)
    return render(request, "accounts/usage.html", {
        **report,
        "days": days,
        "day_choices": USAGE_DAYS,
        "default_daily_tokens": settings.CHAT_DEPARTMENT_DAILY_TOKENS,
        "no_department_daily_tokens": settings.CHAT_NO_DEPARTMENT_USER_DAILY_TOKENS,
        "default_rpm": settings.CHAT_USER_REQUESTS_PER_MINUTE,
        "quota_form": QuotaForm(),
    })


@require_POST
def quota_set(request, department_id):
    if not is_company_admin(request.user):
        raise PermissionDenied
    department = department_policy.instance_for_user(request.user, "view", department_id)
    form = QuotaForm(request.POST)
    if form.is_valid():
        services.department_quota_set(actor=request.user, department=department, ip=client_ip(request), **form.cleaned_data)
        messages.success(request, _("The limits of %(department)s were saved.") % {"department": department.display_name})
    else:
        errors = "; ".join(str(e) for field_errors in form.errors.values() for e in field_errors)
        messages.error(request, _("The limits were not saved: %(errors)s") % {"errors": errors})
    return redirect("people:usage")
