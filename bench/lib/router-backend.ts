// A fast HTTP backend for the router benchmark: answers every request with a small fixed body.
// Run as its own process: `node --import tsx bench/lib/router-backend.ts [port]`; prints `port=<n>`.
import { createServer } from 'node:http';

const body = Buffer.from('{"ok":true,"from":"bench-backend"}\n');
const server = createServer({ keepAliveTimeout: 60_000, noDelay: true }, (req, res) => {
  const send = (): void => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
    res.end(body);
  };
  if (req.method === 'GET' || req.method === 'HEAD') send();
  else req.resume().once('end', send);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`port=${typeof a === 'object' && a ? a.port : 0}\n`);
});
process.on('SIGTERM', () => process.exit(0));
