// Runs one built-in Router in its own process for the router benchmark.
// `node --import tsx bench/lib/router-process.ts <http|http-nodehttp|tcp> <backendPort>`; prints `port=<n>`.
// `http-nodehttp` turns the raw-socket fast path off (every request through node:http + undici).
import { Router } from '../../src/router/index.js';

const arg = process.argv[2];
const mode = arg === 'tcp' ? 'tcp' : 'http';
const backendPort = Number(process.argv[3]);
const router = await Router.create({
  service: 'bench',
  mode,
  fastPath: arg !== 'http-nodehttp',
  backends: [{ id: 'b1', host: '127.0.0.1', port: backendPort }],
});
process.stdout.write(`port=${router.address.port}\n`);
process.on('SIGTERM', () => {
  void router.close().then(() => process.exit(0));
});
