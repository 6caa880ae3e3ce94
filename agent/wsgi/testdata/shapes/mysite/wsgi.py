"""Shaped as Django's startproject wsgi.py (no Django needed)."""

import os


class WSGIHandler:
    """As django.core.handlers.wsgi.WSGIHandler."""

    def get_response(self, request):
        return request

    def __call__(self, environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"mysite, as %s\n" % __name__.encode()]


def get_wsgi_application():
    return WSGIHandler()


os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_wsgi_application()
