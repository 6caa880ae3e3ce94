"""Shaped as a Flask application package (no Flask needed)."""


class Flask:
    """As flask.Flask: an object whose __call__ is the WSGI application."""

    def __init__(self, import_name):
        self.import_name = import_name

    def wsgi_app(self, environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"shop, as %s\n" % self.import_name.encode()]

    def __call__(self, environ, start_response):
        return self.wsgi_app(environ, start_response)


def create_app(config=None):
    return Flask(__name__)
