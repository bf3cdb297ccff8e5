from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.views import i18n
from django.views.decorators.http import require_POST
from rest_framework.authtoken.models import Token

from core.audit import client_ip

from . import selectors, services
from .forms import DepartmentForm, LoginForm, MembershipForm, UserCreateForm
from .policy import department_policy, membership_policy, user_policy


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:profile")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Your password was changed."))
        return response


set_language = login_not_required(i18n.set_language)


def profile(request):
    token = Token.objects.filter(user=request.user).first()
    return render(
        request,
        "accounts/profile.html",
        {"memberships": selectors.user_memberships(user=request.user), "token": token},
    )


@require_POST
def token_regenerate(request):
    token = services.api_token_regenerate(user=request.user)
    messages.success(request, _("A new API token was created. The previous one no longer works."))
    return render(
        request,
        "accounts/profile.html",
        {"memberships": selectors.user_memberships(user=request.user), "token": token, "token_fresh": True},
    )


def _require_people_admin(request):
    if not selectors.navigation_for(user=request.user).admin:
        raise PermissionDenied


def _people_context(request, **forms):
    user = request.user
    managed = selectors.managed_departments(user=user)
    context = {
        "departments": selectors.department_list(user=user),
        "people": selectors.people_list(user=user),
        "can_add_department": department_policy.user_has_permission(user, "add"),
        "can_add_user": user_policy.user_has_permission(user, "add"),
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
