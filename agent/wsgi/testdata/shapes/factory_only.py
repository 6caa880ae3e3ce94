from shop import create_app  # noqa: F401
