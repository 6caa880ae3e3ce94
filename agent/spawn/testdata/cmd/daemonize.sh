#!/bin/sh
# A command that daemonizes: it starts a daemon listening on $PORT out of
# its process group (setsid: the agent's stop does not reach it) and exits
# before anything answers there: the revision's own fault, whose port is
# not taken by another. The daemon lives while $DAEMON_DIR exists (the
# test removes it as it ends).
(setsid python3 -c '
import os, socket, time
s = socket.socket(); s.bind(("127.0.0.1", int(os.environ["PORT"]))); s.listen()
while os.path.isdir(os.environ["DAEMON_DIR"]):
    time.sleep(0.2)' &)
sleep 1
exit 0
