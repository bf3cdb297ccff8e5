from django.conf import settings


class ContentSecurityPolicyMiddleware:
    """Adds the site's Content-Security-Policy to HTML responses that don't set their own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path_info.startswith(settings.CONTENT_SECURITY_POLICY_EXEMPT_PREFIXES):
            return response
        if response.get("Content-Type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


# SQLSTATEs of a statement stopped by statement_timeout (57014) or lock_timeout (55P03).
TIMEOUT_SQLSTATES = {"57014", "55P03"}


def database_timeout(exc: BaseException) -> bool:
    cause = exc
    while cause is not None:
        if getattr(cause, "sqlstate", None) in TIMEOUT_SQLSTATES or getattr(cause, "pgcode", None) in TIMEOUT_SQLSTATES:
            return True
        cause = cause.__cause__
    return False


class DatabaseTimeoutMiddleware:
    """A request whose statement hit the request-path statement_timeout or lock_timeout (set per
    connection, config/settings/database.py) answers 503 with a clear message instead of hanging
    or a bare 500; its transaction was rolled back, so nothing changed."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.db import DatabaseError

        if not isinstance(exception, DatabaseError) or not database_timeout(exception):
            return None
        import logging

        from django.http import JsonResponse
        from django.shortcuts import render
        from django.utils.translation import gettext as _

        logging.getLogger(__name__).warning("request %s %s stopped by a database time limit: %s",
                                            request.method, request.path, exception)
        message = _("The database is busy with other work and this request waited too long; nothing was changed. Try again in a moment.")
        if request.path_info.startswith("/api/"):
            response = JsonResponse({"detail": message}, status=503)
        else:
            response = render(request, "503.html", {"message": message}, status=503)
        response["Retry-After"] = "5"
        return response
