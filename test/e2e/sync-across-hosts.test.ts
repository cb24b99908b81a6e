// File sync between two real hosts (network namespaces on a bridge): the primary's SyncSource bound
// to host A's address, the echo's SyncTarget on host B, the trees compared with verifyTrees. The
// connection is TLS with mutual authentication by a cluster CA, as between hosts it should be.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureClusterCa } from '../../src/agent/index.js';
import { verifyTrees } from '../../src/sync/index.js';
import { netnsSupport, NetnsLab } from '../lib/netns.js';

const support = netnsSupport();
if (!support.ok) console.warn(`skipping sync across hosts: ${support.reason}`);
const peer = join(dirname(fileURLToPath(import.meta.url)), '..', 'lib', 'netns-sync-peer.ts');
const KEY = 'netns-sync-test-key-0123456789';

/** Starts a sync peer in host `name`; resolves with its first message (`ready`). */
async function startPeer(
  lab: NetnsLab,
  name: string,
  args: string[],
): Promise<{ child: ChildProcess; ready: { port?: number } }> {
  const child = lab.exec(name, process.execPath, ['--import', 'tsx', peer, ...args], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<{ port?: number }>((resolve, reject) => {
    child.on('message', (m: { type: string; port?: number }) => {
      if (m.type === 'ready') resolve(m);
    });
    child.once('exit', (code) => reject(new Error(`sync peer in ${name} exited ${code}`)));
  });
  return { child, ready };
}

async function converge(a: string, b: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const d = await verifyTrees(a, b);
    if (d.length === 0) return;
    if (Date.now() > until) throw new Error(`trees differ: ${JSON.stringify(d.slice(0, 5))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!support.ok)('file sync across hosts', () => {
  let lab: NetnsLab;
  let base: string;
  let a: string;
  let b: string;
  let ca: string;
  beforeAll(async () => {
    lab = NetnsLab.create({ hosts: ['primary-host', 'echo-host'] });
    base = await mkdtemp(join(tmpdir(), 'us-netns-sync-'));
    a = join(base, 'a');
    b = join(base, 'b');
    await mkdir(join(a, 'data', 'sub'), { recursive: true });
    ca = join(base, 'cluster-ca.pem');
    await ensureClusterCa(ca);
  });
  afterAll(async () => {
    await lab?.close();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('copies a tree from host A to host B over the veth in mutually authenticated TLS, follows changes, and resumes after a partition', async () => {
    await writeFile(join(a, 'data', 'sub', 'big.bin'), randomBytes(3_000_000));
    await writeFile(join(a, 'config.yaml'), 'a: 1\n');
    for (let i = 0; i < 50; i++) await writeFile(join(a, 'data', `f${i}.txt`), randomBytes(2000));
    await symlink('data/sub/big.bin', join(a, 'link'));

    const tls = `--ca=${ca}`;
    const source = await startPeer(lab, 'primary-host', ['source', a, lab.address('primary-host'), KEY, tls]);
    const port = String(source.ready.port);
    await startPeer(lab, 'echo-host', ['target', b, lab.address('primary-host'), port, KEY, tls]);
    await converge(a, b);

    await appendFile(join(a, 'data', 'sub', 'big.bin'), randomBytes(10_000));
    await rename(join(a, 'data', 'f1.txt'), join(a, 'data', 'renamed.txt'));
    await rm(join(a, 'data', 'f2.txt'));
    await converge(a, b);

    // Cut the echo's host off: a change cannot reach it, whatever the wait; healed, it arrives.
    lab.partition('echo-host');
    await writeFile(join(a, 'during-partition.txt'), 'written while cut off');
    await new Promise((r) => setTimeout(r, 1000));
    expect((await verifyTrees(a, b)).length).toBeGreaterThan(0);
    lab.heal('echo-host');
    await converge(a, b, 60_000);
  });
});
