// Runs one built-in Router in its own process for the router benchmark.
// `node --import tsx bench/lib/router-process.ts <http|tcp> <backendPort>`; prints `port=<n>`.
import { Router } from '../../src/router/index.js';

const mode = process.argv[2] === 'tcp' ? 'tcp' : 'http';
const backendPort = Number(process.argv[3]);
const router = await Router.create({
  service: 'bench',
  mode,
  backends: [{ id: 'b1', host: '127.0.0.1', port: backendPort }],
});
process.stdout.write(`port=${router.address.port}\n`);
process.on('SIGTERM', () => {
  void router.close().then(() => process.exit(0));
});
