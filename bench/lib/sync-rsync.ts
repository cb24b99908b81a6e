// An rsync daemon on 127.0.0.1 (free port, temp rsyncd.conf) and a client run that reports the bytes
// from `--stats` (total bytes sent + received), so rsync's delta algorithm is the one measured.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** The bytes an rsync run moved both ways, from its `--stats` output (NaN if absent). */
export function rsyncStatsBytes(stdout: string): number {
  const num = (label: string): number => {
    const m = new RegExp(`${label}: ([\\d,]+)`).exec(stdout);
    return m ? Number((m[1] as string).replace(/,/g, '')) : NaN;
  };
  return num('Total bytes sent') + num('Total bytes received');
}

export interface RsyncRun {
  readonly bytes: number;
  readonly seconds: number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** A running rsync daemon serving `root` as module `bench`. */
export class RsyncDaemon {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {}

  static available(): boolean {
    return spawnSync('rsync', ['--version']).status === 0;
  }

  static async start(root: string, workDir: string): Promise<RsyncDaemon> {
    const port = await freePort();
    const conf = join(workDir, 'rsyncd.conf');
    writeFileSync(
      conf,
      `pid file = ${join(workDir, 'rsyncd.pid')}\nuse chroot = no\n[bench]\n  path = ${root}\n  read only = no\n  uid = 0\n  gid = 0\n`,
    );
    const child = spawn(
      'rsync',
      ['--daemon', '--no-detach', `--port=${port}`, `--address=127.0.0.1`, `--config=${conf}`],
      { stdio: 'ignore' },
    );
    const d = new RsyncDaemon(child, port);
    for (let i = 0; i < 100; i++) {
      if (spawnSync('rsync', [`rsync://127.0.0.1:${port}/`], { stdio: 'ignore' }).status === 0) return d;
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    throw new Error('rsync daemon did not start');
  }

  /** `rsync -a --delete --no-whole-file --stats src/ rsync://…/bench/dest/`; bytes = sent + received. */
  run(src: string, dest: string, extra: string[] = []): RsyncRun {
    const t = performance.now();
    const r = spawnSync(
      'rsync',
      [
        '-a',
        '--delete',
        '--no-whole-file',
        '--stats',
        ...extra,
        `${src}/`,
        `rsync://127.0.0.1:${this.port}/bench/${dest}/`,
      ],
      { encoding: 'utf8', maxBuffer: 1 << 26 },
    );
    const seconds = (performance.now() - t) / 1000;
    if (r.status !== 0) throw new Error(`rsync failed: ${r.stderr}`);
    return { bytes: rsyncStatsBytes(r.stdout), seconds };
  }

  stop(): void {
    this.child.kill('SIGTERM');
  }
}
