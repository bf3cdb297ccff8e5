from django.utils.functional import SimpleLazyObject


def health_navigation(request):
    """Whether the top bar offers "Health" (asked only when a template reads it)."""
    from .policy import user_may_watch
    from .selectors import unread_count

    user = getattr(request, "user", None)
    return {
        "health_nav": SimpleLazyObject(lambda: user_may_watch(user)),
        "health_unread": SimpleLazyObject(lambda: unread_count(user=user)),
    }
