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
