from shutil import copyfile  # noqa: F401: takes two arguments, but imported, not an application

from mysite.wsgi import WSGIHandler, get_wsgi_application  # noqa: F401: a class and a factory of none of FACTORY_NAMES

handler = get_wsgi_application()


def serve(environ, start_response):
    return handler(environ, start_response)


def helper(environ):
    return environ
