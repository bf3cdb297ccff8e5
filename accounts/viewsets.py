"""The DRF base for every API viewset that exposes a protected model.

Its queryset always comes from the model's permission policy. A subclass that defines
`get_queryset` or a `queryset` attribute is refused at class-creation time (after PostHog's
routing mixin), so no endpoint can forget the permission filter.
"""

from typing import Any, ClassVar

from django.utils.translation import gettext as _
from rest_framework import viewsets
from rest_framework.exceptions import ParseError, PermissionDenied, ValidationError
from rest_framework.permissions import SAFE_METHODS

from .policy import PermissionPolicy

def drf_validation_error(exc) -> ValidationError:
    """A service's Django ValidationError as the API's 400: its per-field messages, or
    {"detail": [...]} when it names no field."""
    return ValidationError(getattr(exc, "message_dict", None) or {"detail": exc.messages})


ACTION_FOR_METHOD = {
    "list": "view",
    "retrieve": "view",
    "create": "add",
    "update": "change",
    "partial_update": "change",
    "destroy": "delete",
}


class PolicyViewSetMixin:
    policy: ClassVar[PermissionPolicy]
    # Extra @action endpoints map to a policy action here, e.g. {"approve": "review"}.
    policy_actions: ClassVar[dict[str, str]] = {}
    # Actions that take no body (archive, sync, ...): a body must then be empty or {}.
    actions_without_body: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__} must not override get_queryset: the permission policy provides it.")
        if cls.__dict__.get("queryset") is not None:
            raise TypeError(f"{cls.__name__} must not set queryset: the permission policy provides it.")

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        if request.method in SAFE_METHODS:
            return
        # Parse now, before the handler changes anything: a malformed body is a 400 on every
        # endpoint, also on those that ignore their body.
        data = request.data
        if (self.action in self.actions_without_body or self.action == "destroy") and data not in ({}, None, ""):
            if hasattr(data, "dict") and not data.dict():
                return
            raise ParseError(_("This action takes no body (or an empty JSON object)."))

    def policy_action(self) -> str:
        action = getattr(self, "action", None) or "list"
        return self.policy_actions.get(action) or ACTION_FOR_METHOD.get(action, "view")

    def get_queryset(self):
        # Objects are looked up among those the user may *see*; a hidden object is a 404.
        queryset = self.policy.instances_user_has_permission_for(self.request.user, "view")
        return self.refine_queryset(queryset)

    def refine_queryset(self, queryset):
        """Hook for select_related/ordering/filters; can only narrow the policy's queryset."""
        return queryset

    def check_permissions(self, request) -> None:
        super().check_permissions(request)
        if self.policy_action() == "add" and not self.policy.user_has_permission(request.user, "add"):
            raise PermissionDenied()

    def check_object_permissions(self, request, obj) -> None:
        super().check_object_permissions(request, obj)
        action = self.policy_action()
        if action != "view" and not self.policy.user_has_permission_for_instance(request.user, action, obj):
            raise PermissionDenied()


class PolicyModelViewSet(PolicyViewSetMixin, viewsets.ModelViewSet):
    pass


class PolicyReadOnlyViewSet(PolicyViewSetMixin, viewsets.ReadOnlyModelViewSet):
    pass
