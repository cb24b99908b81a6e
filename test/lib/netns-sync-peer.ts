// One side of file sync inside a host's namespace, driven over IPC by a test or benchmark in the
// machine's own namespace (started with NetnsLab.exec and an 'ipc' stdio slot).
//   source <dir> <bindAddress> <key>                 → {type:'ready', port}; answers {type:'stats'}
//   target <dir> <sourceAddress> <port> <key> [file] → {type:'ready'}; reports each applied batch
// Both stop on {type:'stop'}. With `--ca=<cluster-ca.pem>` anywhere, the connection is TLS with mutual
// authentication: each side issues itself a leaf of that CA (the source's names its bind address).
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { issueLeaf, readClusterCa, type TlsIdentity } from '../../src/agent/index.js';
import { SyncSource, SyncTarget, type AppliedEvent } from '../../src/sync/index.js';

const argv = process.argv.slice(2);
const caFile = argv.find((a) => a.startsWith('--ca='))?.slice('--ca='.length);
const [mode, ...args] = argv.filter((a) => !a.startsWith('--ca='));
const identity = async (name: string, ips: string[]): Promise<{ tls?: TlsIdentity }> =>
  caFile ? { tls: await issueLeaf(readClusterCa(caFile), { name, ips }) } : {};
const send = (m: unknown): void => void process.send?.(m);

if (mode === 'source') {
  const [dir, host, key] = args as [string, string, string];
  const source = await SyncSource.create({
    dir,
    key,
    host,
    port: 0,
    scanIntervalMs: 0,
    ...(await identity('sync-source', [host])),
  });
  source.on('connected', () => send({ type: 'connected', at: performance.timeOrigin + performance.now() }));
  source.on('error', (e: Error) => send({ type: 'error', message: e.message }));
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stats') send({ type: 'stats', stats: source.stats()[0] ?? null });
    if (m.type === 'stop') void source.close().then(() => process.exit(0));
  });
  send({ type: 'ready', port: source.port });
} else if (mode === 'target') {
  const [dir, host, port, key, watchFile] = args as [string, string, string, string, string | undefined];
  const target = await SyncTarget.create({
    dir,
    host,
    port: Number(port),
    key,
    durable: true,
    ...(await identity('sync-target', [])),
  });
  target.on('applied', (ev: AppliedEvent) => {
    // Synchronously, so no later batch can be applied in between.
    const size = watchFile ? (statSync(join(dir, watchFile), { throwIfNoEntry: false })?.size ?? -1) : -1;
    send({ type: 'applied', seq: ev.seq, at: ev.at, files: ev.files, size });
  });
  target.on('error', (e: Error) => send({ type: 'error', message: e.message }));
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stop') void target.close().then(() => process.exit(0));
  });
  send({ type: 'ready' });
} else {
  process.stderr.write(`netns-sync-peer: unknown mode '${mode}' (source or target)\n`);
  process.exit(2);
}
