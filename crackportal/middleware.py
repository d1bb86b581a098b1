"""Request limits applied before a body is read."""

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render


def _megabytes(n: int) -> str:
    return f"{n / 1024 / 1024:,.0f} MB"


def _refuse(request, message: str, status: int):
    """JSON {"detail": ...} for the API, an HTML page (413.html) or plain text for the rest."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    if status == 413:
        return render(request, "413.html", {"message": message}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class UploadSizeLimitMiddleware:
    """Refuse a request whose body is over MAX_UPLOAD_BYTES with 413, before reading any of it.

    Within the limit, uploaded files stream to temporary files on disk
    (FILE_UPLOAD_MAX_MEMORY_SIZE), so a large survey never sits in memory.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.MAX_UPLOAD_BYTES
        if length > limit:
            message = (
                f"The upload is {_megabytes(length)}; one request may carry at most "
                f"{_megabytes(limit)}. Send the survey in several parts (files or zips)."
            )
            return _refuse(request, message, 413)
        return self.get_response(request)


class NulByteMiddleware:
    """400 for a query string or form field holding a NUL byte.

    PostgreSQL text cannot store NUL; such input (never sent by a real browser or client)
    would otherwise fail deep inside, e.g. when a failed sign-in is logged.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    @staticmethod
    def _has_nul(query) -> bool:
        return any(
            "\x00" in key or any("\x00" in v for v in values) for key, values in query.lists()
        )

    def __call__(self, request):
        form = request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        )
        if self._has_nul(request.GET) or (form and self._has_nul(request.POST)):
            return _refuse(request, "Text with NUL (0x00) bytes is not accepted.", 400)
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """Send settings.CONTENT_SECURITY_POLICY on every response that has none.

    Pages run only the project's own scripts (no inline script: data for scripts travels in
    `json_script` blocks), so an injected <script> does not execute.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY:
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response
