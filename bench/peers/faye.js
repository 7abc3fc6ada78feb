// Faye 1.4.3 (in-memory engine) on http://127.0.0.1:$PORT/cometd, for
// bin/bayeux-bench. Connects are held up to 30 s, as bayeux's default.
'use strict';
const http = require('http');
const faye = require('faye');

const port = Number(process.env.PORT || 8081);
const bayeux = new faye.NodeAdapter({ mount: '/cometd', timeout: 30 });
const server = http.createServer((req, res) => {
  res.statusCode = 404;
  res.end();
});
bayeux.attach(server);
// Keep idle keep-alive connections longer than Node's 5 s default: a
// long-polling client reuses them between connects.
server.keepAliveTimeout = 65000;
server.headersTimeout = 66000;
server.listen(port, process.env.HOST || '127.0.0.1', () => {
  console.log(`faye listening on ${server.address().address}:${port}/cometd`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
