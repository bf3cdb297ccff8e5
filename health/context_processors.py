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


def waiting_for_you(request):
    """What waits for the user's action (the home page reads it; nothing is counted elsewhere)."""
    from .selectors import waiting_for

    user = getattr(request, "user", None)
    return {"waiting_for_you": SimpleLazyObject(lambda: waiting_for(user=user))}
