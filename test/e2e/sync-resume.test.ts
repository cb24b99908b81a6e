import { afterEach, describe, expect, it } from 'vitest';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { appendFile, mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SyncSource, SyncTarget, type AppliedEvent, type SyncSourceOptions } from '../../src/sync/index.js';
import { converge } from './fixtures/sync/converge.js';

const KEY = 'resume-test-service-key-0123456789';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A TCP proxy whose connections the test can cut. */
async function proxy(port: number): Promise<{ port: number; cut: () => number; server: Server }> {
  const pairs = new Set<[Socket, Socket]>();
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port });
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const a = server.address();
  return {
    port: typeof a === 'object' && a ? a.port : 0,
    server,
    cut: () => {
      const n = pairs.size;
      for (const [c, u] of [...pairs]) {
        c.destroy();
        u.destroy();
      }
      pairs.clear();
      return n;
    },
  };
}

/** A primary and an echo connected through a proxy whose connections the test can cut. */
async function rig(sourceOptions: Partial<SyncSourceOptions> = {}) {
  const base = await mkdtemp(join(tmpdir(), 'us-sync-resume-'));
  const a = join(base, 'primary');
  const b = join(base, 'echo');
  await mkdir(a);
  const source = await SyncSource.create({ dir: a, key: KEY, scanIntervalMs: 0, ...sourceOptions });
  const px = await proxy(source.port);
  const target = await SyncTarget.create({
    dir: b,
    key: KEY,
    port: px.port,
    durable: false,
    reconnectDelayMs: 20,
  });
  cleanups.push(async () => {
    await target.close();
    await source.close();
    await new Promise((r) => px.server.close(r));
    await rm(base, { recursive: true, force: true });
  });
  return { a, b, source, px, target };
}

describe('connection loss', () => {
  it('resumes after the connection drops mid-stream without applying any batch twice', async () => {
    const { a, b, source, px, target } = await rig();
    const applied: number[] = [];
    target.on('applied', (e: AppliedEvent) => applied.push(e.seq));
    await writeFile(join(a, 'seed'), 'x');
    await converge(a, b, source);
    const lineage = target.stats().lineage;

    let cuts = 0;
    for (let i = 0; i < 60; i++) {
      await writeFile(join(a, `f${i % 25}.bin`), randomBytes(100_000 + i * 1000));
      if (i % 12 === 6) cuts += px.cut();
      await new Promise((r) => setTimeout(r, 8));
    }
    await converge(a, b, source);
    expect(cuts).toBeGreaterThan(0);
    // Resumed in the same lineage (no full resync), every batch applied exactly once, in order.
    expect(target.stats().lineage).toBe(lineage);
    expect(new Set(applied).size).toBe(applied.length);
    expect(applied).toEqual([...applied].sort((x, y) => x - y));
    expect(target.stats().batchesApplied).toBe(applied.length);
    const s = source.stats()[0];
    expect(s?.lastAckedSeq).toBe(applied.at(-1));
  });

  it('resends a big file cut off while it was streamed, and signs what was finally acknowledged', async () => {
    // Streamed from 256 KiB, capped at 8 MB/s so that the 6 MB file is still in flight at the cuts.
    const { a, b, source, px, target } = await rig({
      streamFromBytes: 256 * 1024,
      frameDataBytes: 64 * 1024,
      bandwidthBytesPerSec: 8_000_000,
    });
    const applied: number[] = [];
    target.on('applied', (e: AppliedEvent) => applied.push(e.seq));
    await writeFile(join(a, 'seed'), 'x');
    await converge(a, b, source);
    const lineage = target.stats().lineage;
    await writeFile(join(a, 'big.bin'), randomBytes(6_000_000));
    let cuts = 0;
    for (const wait of [150, 300]) {
      await new Promise((r) => setTimeout(r, wait));
      cuts += px.cut();
    }
    await converge(a, b, source);
    expect(cuts).toBe(2);
    expect(target.stats().lineage).toBe(lineage);
    expect(new Set(applied).size).toBe(applied.length);
    // The signature of the acknowledged content makes the next append a small delta.
    const before = source.stats()[0]?.wireBytes ?? 0;
    await appendFile(join(a, 'big.bin'), randomBytes(20_000));
    await converge(a, b, source);
    expect((source.stats()[0]?.wireBytes ?? 0) - before).toBeLessThan(200_000);
    expect(source.stats()[0]?.errors).toBe(0);
  });
});
