// cometd-nodejs-server 1.2.1 on http://127.0.0.1:$PORT/cometd, for
// bin/bayeux-bench. Connects are held up to 30 s, as bayeux's default.
'use strict';
const http = require('http');
const cometd = require('cometd-nodejs-server');

const port = Number(process.env.PORT || 8082);
const cometdServer = cometd.createCometDServer({ logLevel: 'warn', timeout: 30000 });
const server = http.createServer((req, res) => {
  if (req.url === '/cometd' || req.url.startsWith('/cometd/') || req.url.startsWith('/cometd?')) {
    cometdServer.handle(req, res);
    return;
  }
  res.statusCode = 404;
  res.end();
});
// Keep idle keep-alive connections longer than Node's 5 s default: a
// long-polling client reuses them between connects.
server.keepAliveTimeout = 65000;
server.headersTimeout = 66000;
server.listen(port, process.env.HOST || '127.0.0.1', () => {
  console.log(`cometd-nodejs-server listening on ${server.address().address}:${port}/cometd`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
