from django.utils.functional import SimpleLazyObject

from .selectors import navigation_for


def navigation(request):
    """The navigation entries the current user may see (computed on first use)."""
    return {"nav": SimpleLazyObject(lambda: navigation_for(user=request.user))}
