"""broken-wsgi: an application that cannot be imported.

Its spawn fails with "ModuleNotFoundError: No module named
'ferry_module_that_does_not_exist'" and this traceback, after one line of
output, as a deployment with a missing dependency would.
"""

import sys

print("broken-wsgi: importing a module that is not installed", file=sys.stderr)

import ferry_module_that_does_not_exist  # noqa: E402,F401


def application(environ, start_response):  # never reached
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"unreachable\n"]
