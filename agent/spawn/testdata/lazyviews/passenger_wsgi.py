# An app that imports fine and loads its views at its first request, as a
# Django project loads its URLconf: the module named by $VIEWS (views by
# default). broken_views has a syntax error, which then fails every
# request (a 500 and a traceback), not the import; exit_views ends the
# process in a request.
import importlib
import os


def application(environ, start_response):
    views = importlib.import_module(os.environ.get("VIEWS", "views"))
    return views.handle(environ, start_response)
