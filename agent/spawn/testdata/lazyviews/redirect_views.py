def handle(environ, start_response):
    # Django's SecurityMiddleware with SECURE_SSL_REDIRECT = True
    start_response("301 Moved Permanently", [("Location", "https://localhost" + environ["PATH_INFO"]), ("Content-Length", "0")])
    return [b""]
