from shop import create_app  # noqa: F401


class LocalProxy:
    """As werkzeug's LocalProxy (flask.current_app, flask.request): callable,
    and every attribute it lacks looked up on what it stands for, which
    outside a request is nothing."""

    def __getattr__(self, name):
        raise RuntimeError("Working outside of application context.")

    def __call__(self, *args, **kwargs):
        return self.__getattr__("__call__")(*args, **kwargs)


current_app = LocalProxy()
