import sys


def handle(environ, start_response):
    sys.exit(3)
