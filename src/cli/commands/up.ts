import { formatDecision } from '../format-decision.js';
import { initialSyncLines } from '../sync-progress.js';
import { startEmbedded, type Embedded } from '../embedded.js';
import { ExitCode, reportError } from '../exit-codes.js';
import { printStatusTable } from './status.js';

export interface UpOptions {
  dataDir: string;
  file: string;
  api?: string;
}

/**
 * `understudy up`: runs in the foreground until Ctrl-C (SIGINT), SIGTERM, SIGHUP or `understudy down`,
 * then stops every instance gracefully. A second Ctrl-C kills every instance's process group at once.
 * A signal during start-up is honoured as soon as start-up finishes: nothing is left running.
 */
export async function runUp(options: UpOptions): Promise<number> {
  let embedded: Embedded | undefined;
  let requested: string | undefined;
  let wake: (reason: string) => void = () => undefined;
  const stopRequested = new Promise<string>((resolve) => (wake = resolve));
  const onSignal = (signal: NodeJS.Signals): void => {
    if (requested !== undefined) {
      process.stderr.write(`understudy: ${signal} again: killing every instance now\n`);
      for (const inst of embedded?.control.instances() ?? []) {
        try {
          if (inst.pgid) process.kill(-inst.pgid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      process.exit(ExitCode.Failure);
    }
    requested = signal;
    wake(signal);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  try {
    try {
      embedded = await startEmbedded({
        specFile: options.file,
        dataDir: options.dataDir,
        ...(options.api ? { apiListen: options.api } : {}),
        onDecision: (d) => {
          if (d.outcome.status !== 'pending') process.stdout.write(formatDecision(d) + '\n');
        },
        onShutdownRequest: (reason) => {
          requested ??= reason;
          wake(reason);
        },
      });
    } catch (err) {
      return reportError(err);
    }
    process.stdout.write(
      `understudy: ${embedded.spec.file} running; API ${embedded.api.endpoint.url}; data ${embedded.dataDir}\n`,
    );
    process.stdout.write('understudy: Ctrl-C stops every instance\n');
    if (requested === undefined) {
      // Let the first instances come up before the first table.
      await Promise.race([stopRequested, new Promise((r) => setTimeout(r, 300))]);
      if (requested === undefined) printStatusTable(await embedded.control.services());
    }
    // The initial (full) copy of a warm or cold echo shows as a progress bar until it is done.
    const e = embedded;
    const progress = setInterval(() => {
      void e.control.services().then((services) => {
        for (const line of initialSyncLines(services)) process.stdout.write(line + '\n');
      });
    }, 1000);
    progress.unref();
    const reason = await stopRequested;
    clearInterval(progress);
    process.stdout.write(`understudy: stopping (${reason})\n`);
    await embedded.close();
    process.stdout.write('understudy: stopped; no instance left running\n');
    return ExitCode.Ok;
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}
