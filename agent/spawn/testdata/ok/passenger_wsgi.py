import os, sys
print("booting", os.getpid(), file=sys.stderr)

def application(environ, start_response):
    body = ("%d %s %s\n" % (os.getpid(), os.environ.get("USER"), os.environ.get("GREETING", ""))).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
