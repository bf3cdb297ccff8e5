from django.utils.functional import SimpleLazyObject


def health_navigation(request):
    """Whether the top bar offers "Health" (asked only when a template reads it)."""
    from .policy import user_may_watch

    return {"health_nav": SimpleLazyObject(lambda: user_may_watch(getattr(request, "user", None)))}
