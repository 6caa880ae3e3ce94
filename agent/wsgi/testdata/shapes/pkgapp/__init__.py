"""A package whose __init__.py is the startup file: it says how often it ran."""

import builtins

builtins.pkgapp_runs = getattr(builtins, "pkgapp_runs", 0) + 1


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%s ran %d time(s)\n" % (__name__.encode(), builtins.pkgapp_runs)]
