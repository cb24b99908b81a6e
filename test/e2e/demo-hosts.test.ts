// `understudy demo --part hosts` as a user runs it (the built CLI): three hosts in network namespaces,
// the primary's host cut off under unique writes. Its narration and its closing summary are checked,
// and that it leaves no namespace behind. Without the rights to make namespaces it must say why and
// exit non-zero, without a stack trace and without touching its data directory.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { harnessNamespaces, netnsSupport } from '../lib/netns.js';
import { cliBin, repoRoot } from './lib/cli.js';

const support = netnsSupport();
if (!support.ok) console.warn(`skipping the hosts demo run on network namespaces: ${support.reason}`);

const dirs: string[] = [];
const children = new Set<ChildProcess>();
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'us-demo-hosts-'));
  dirs.push(d);
  return d;
}

/** How long the demo cuts the primary's host off: 4 s (its default is 10 s) is well past the failover. */
const CUT = '4s';

function runDemo(dataDir: string): Promise<{ code: number | null; out: string; pid: number }> {
  const child = spawn(process.execPath, [cliBin, 'demo', '--part', 'hosts', '--cut', CUT, '-d', dataDir], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve({ code, out, pid: child.pid ?? 0 });
    }),
  );
}

describe('the hosts demo', () => {
  it.skipIf(!support.ok)(
    'narrates the placement, the suspicion, the self-fencing, the failover and the first write after the cut, ends with acknowledged writes N, missing 0, split brain 0, the old primary back as an echo, and no namespace left',
    { timeout: 150_000 },
    async () => {
      const r = await runDemo(join(tempDir(), 'demo'));
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(/cut off from the store and every other host for 4 s/);
      expect(r.out).toMatch(/placement: place echo \S+ on (h\d) \(zone z\d\) — another host and zone/);
      expect(r.out).toMatch(/t=\d+ ms: suspected — host h\d is suspected/);
      expect(r.out).toMatch(/t=\d+ ms: self-fenced — the agent of (h\d): self-fenced primary/);
      expect(r.out).toMatch(/t=\d+ ms: failover — promote \S+ in place of \S+ — host: .* \[ok\]/);
      expect(r.out).toMatch(/t=\d+ ms: the first write sent after the cut is acknowledged/);
      const summary = /acknowledged writes (\d+), missing (\d+), split brain (\d+)/.exec(r.out);
      expect(summary, r.out).not.toBeNull();
      expect(Number(summary?.[1])).toBeGreaterThan(50);
      expect(summary?.slice(2)).toEqual(['0', '0']);
      expect(r.out).toMatch(/rejoined on h\d as an echo of/);
      expect(harnessNamespaces().filter((n) => n.startsWith(`us-${r.pid}-`))).toEqual([]);
    },
  );

  // As root, the refusal is shown by running the demo without root's rights: in a new user namespace
  // (`unshare --user`: uid 65534 there, no capability over the host's network, but still able to read
  // a checkout under a mode-700 directory), or else as the user `nobody`.
  const asRoot = process.getuid?.() === 0;
  const unshare = asRoot && spawnSync('unshare', ['--user', 'true']).status === 0;
  const canDrop = !asRoot || unshare || spawnSync('setpriv', ['--version']).status === 0;
  it.skipIf(!canDrop || (!asRoot && support.ok))(
    'without the rights to make network namespaces it says why and what it needs, exits non-zero without a stack trace, and leaves its data directory alone',
    () => {
      const dir = tempDir();
      spawnSync('chmod', ['777', dir]);
      const dataDir = join(dir, 'demo');
      const args = [cliBin, 'demo', '--part', 'hosts', '-d', dataDir];
      const opts = { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 } as const;
      const r = !asRoot
        ? spawnSync(process.execPath, args, opts)
        : unshare
          ? spawnSync('unshare', ['--user', process.execPath, ...args], opts)
          : spawnSync(
              'setpriv',
              ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, ...args],
              opts,
            );
      expect(r.status).not.toBe(0);
      expect(r.status).not.toBeNull();
      expect(r.stderr).toMatch(/demo \(hosts\): needs Linux network namespaces.*need root/);
      expect(r.stderr).toContain('sudo npm run demo -- --part hosts');
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(existsSync(dataDir)).toBe(false);
    },
  );
});
