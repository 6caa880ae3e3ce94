def handle(environ, start_response:
    pass
