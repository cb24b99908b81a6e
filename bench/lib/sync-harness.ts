// One primary (SyncSource, in this process) and one echo (SyncTarget, in a child process) over
// loopback, for the sync bench.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SyncSource, type ApplyTimings, type BatchTrace, type SyncStats } from '../../src/sync/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const KEY = 'bench-sync-service-key-0123456789';

export interface AppliedReport {
  readonly seq: number;
  readonly at: number;
  readonly size: number;
  readonly files: number;
  readonly timings: ApplyTimings;
}

export class SyncHarness {
  readonly applied: AppliedReport[] = [];
  /** Source-side timelines of acknowledged batches (collected once `traceBatches()` is called). */
  readonly traces: BatchTrace[] = [];
  connectedAt = 0;
  private child: ChildProcess | undefined;

  private constructor(
    readonly a: string,
    readonly b: string,
    readonly source: SyncSource,
  ) {
    source.on('connected', () => {
      this.connectedAt = performance.timeOrigin + performance.now();
    });
  }

  /** Creates `<base>/<name>/{a,b}` and starts the primary side (the echo starts with `startEcho`). */
  static async create(base: string, name: string): Promise<SyncHarness> {
    const a = join(base, name, 'a');
    const b = join(base, name, 'b');
    await mkdir(a, { recursive: true });
    const source = await SyncSource.create({ dir: a, key: KEY, scanIntervalMs: 0 });
    return new SyncHarness(a, b, source);
  }

  /** Starts collecting {@link BatchTrace}s. */
  traceBatches(): void {
    this.source.on('trace', (t: BatchTrace) => this.traces.push(t));
  }

  async startEcho(watchFile?: string): Promise<void> {
    const args = [this.b, String(this.source.port), KEY, ...(watchFile ? [watchFile] : [])];
    const child = fork(join(here, 'sync-echo-child.ts'), args, {
      execArgv: [
        '--import',
        'tsx',
        // SYNC_ECHO_PROF=<dir> writes a CPU profile of the echo process there (for investigating).
        ...(process.env.SYNC_ECHO_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SYNC_ECHO_PROF}`] : []),
      ],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      child.on('message', (m: { type: string } & AppliedReport & { message?: string }) => {
        if (m.type === 'ready') resolve();
        else if (m.type === 'applied')
          this.applied.push({ seq: m.seq, at: m.at, size: m.size, files: m.files, timings: m.timings });
        else if (m.type === 'error') process.stderr.write(`echo error: ${m.message}\n`);
      });
      child.once('exit', (code) => reject(new Error(`echo exited ${code}`)));
    });
  }

  stats(): SyncStats | undefined {
    return this.source.stats()[0];
  }

  /** Bytes on the wire so far, both directions. */
  wireBytes(): number {
    const s = this.stats();
    return s ? s.wireBytes + s.wireBytesIn : 0;
  }

  /**
   * Waits until the primary has sent at least one batch beyond `sentBefore` and every change is
   * applied on the echo (no lag, all batches acknowledged, quiet for `quietMs`). Returns the time of
   * the last applied batch (ms since epoch).
   */
  async settle(sentBefore: number, timeoutMs = 120_000, quietMs = 300): Promise<number> {
    const until = Date.now() + timeoutMs;
    let stableSince = 0;
    for (;;) {
      const s = this.stats();
      const caughtUp =
        s !== undefined &&
        s.connected &&
        s.batchesSent > sentBefore &&
        s.batchesAcked === s.batchesSent &&
        s.lagSeconds === 0 &&
        s.initialSync === null;
      if (caughtUp) {
        stableSince ||= Date.now();
        if (Date.now() - stableSince >= quietMs) break;
      } else stableSince = 0;
      if (Date.now() > until) throw new Error(`sync did not settle: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.applied.at(-1)?.at ?? 0;
  }

  async close(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.send({ type: 'stop' });
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    await this.source.close();
  }
}
