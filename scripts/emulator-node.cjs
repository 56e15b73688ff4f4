// Preloaded into the Firebase CLI (NODE_OPTIONS, scripts/env.sh) when it runs the emulators.
//
// Node 20's default HTTP agent keeps connections alive (5 s), and the Functions
// emulator sends each event to a Python worker's gunicorn server, which closes an
// idle keep-alive connection after 2 s. A delivery written on a connection just as
// gunicorn closes it fails with "socket hang up" and the event is lost (the
// emulator does not redeliver). Without keep-alive each delivery opens its own
// connection on localhost, so none is lost that way.
const http = require("http");

http.globalAgent = new http.Agent({ keepAlive: false });
