import type { Logger, LevelWithSilent } from 'pino';
import { loadSpecFile } from '../../config/index.js';
import type { ControlDecision, ControlPlane } from '../../control/index.js';
import { initialSyncLines } from '../sync-progress.js';
import { startEmbedded, type Embedded } from '../embedded.js';
import { ExitCode, reportError } from '../exit-codes.js';
import { createLogger, logDecision, resolveLogFormat, type LogFormat } from '../logger.js';
import { statusTable } from './status.js';

export interface UpOptions {
  dataDir: string;
  file: string;
  api?: string;
  /** @default text on a terminal, json when stdout is piped */
  logFormat?: LogFormat;
  /** @default 'info' */
  logLevel?: LevelWithSilent;
}

/**
 * `understudy up`: runs in the foreground until Ctrl-C (SIGINT), SIGTERM or `understudy down`, then
 * stops every instance gracefully. A second Ctrl-C kills every instance's process group at once. A
 * signal during start-up is honoured as soon as start-up finishes: nothing is left running. SIGHUP
 * reloads the spec file (see {@link reloadSpec}). Every decision is one log record (pino: JSON lines,
 * or the one-line text format on a terminal).
 */
export async function runUp(options: UpOptions): Promise<number> {
  const format = resolveLogFormat(options.logFormat, process.stdout.isTTY);
  const log = createLogger({ format, level: options.logLevel ?? 'info' });
  const text = format === 'text';
  let embedded: Embedded | undefined;
  let requested: string | undefined;
  let wake: (reason: string) => void = () => undefined;
  const stopRequested = new Promise<string>((resolve) => (wake = resolve));
  let reloads: Promise<void> = Promise.resolve();
  let reloadAfterStart = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signal === 'SIGHUP') {
      if (requested !== undefined) return;
      if (!embedded) {
        reloadAfterStart = true;
        return;
      }
      const e = embedded;
      reloads = reloads.then(() => reloadSpec(e, log));
      return;
    }
    if (requested !== undefined) {
      log.error(`${signal} again: killing every instance now`);
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
  // Each record carries the service's epoch: a promotion's own, else the one its router holds.
  const onDecision = (d: ControlDecision, control: ControlPlane): void => {
    if (d.outcome.status === 'pending') return;
    const epoch = typeof d.inputs.epoch === 'number' ? d.inputs.epoch : control.epochOf(d.service);
    logDecision(log, d, epoch);
  };
  try {
    try {
      embedded = await startEmbedded({
        specFile: options.file,
        dataDir: options.dataDir,
        ...(options.api ? { apiListen: options.api } : {}),
        onDecision,
        onShutdownRequest: (reason) => {
          requested ??= reason;
          wake(reason);
        },
      });
    } catch (err) {
      return reportError(err);
    }
    const e = embedded;
    log.info(
      { file: e.spec.file, api: e.api.endpoint.url, dataDir: e.dataDir },
      `${e.spec.file} running; API ${e.api.endpoint.url}; data ${e.dataDir}`,
    );
    log.info('Ctrl-C stops every instance; SIGHUP reloads the spec file');
    if (reloadAfterStart) reloads = reloads.then(() => reloadSpec(e, log));
    if (requested === undefined && text) {
      // Let the first instances come up before the first table.
      await Promise.race([stopRequested, new Promise((r) => setTimeout(r, 300))]);
      if (requested === undefined) process.stdout.write(statusTable(await e.control.services()));
    }
    // The initial (full) copy of a warm or cold echo shows as a progress bar until it is done.
    const progress = setInterval(() => {
      void e.control.services().then((services) => {
        for (const line of initialSyncLines(services)) {
          if (text) process.stdout.write(line + '\n');
          else log.debug({ progress: line }, 'initial sync');
        }
      });
    }, 1000);
    progress.unref();
    const reason = await stopRequested;
    clearInterval(progress);
    log.info({ reason }, `stopping (${reason})`);
    await reloads;
    await e.close();
    log.info('stopped; no instance left running');
    return ExitCode.Ok;
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}

/**
 * SIGHUP: reads and validates the spec file again. A file with errors changes nothing: the errors are
 * recorded as a failed `reload` decision (and so logged). A valid one is applied by the control plane:
 * the fields that can change live do, the others are reported as needing a restart.
 */
export async function reloadSpec(e: Embedded, log: Logger): Promise<void> {
  let next;
  try {
    next = loadSpecFile(e.spec.file);
  } catch (err) {
    const message = (err as Error).message;
    e.control.decisions.record({
      kind: 'reload',
      service: '',
      what: `reload ${e.spec.file}: refused, nothing changed`,
      why: `SIGHUP; the file is invalid: ${message.replace(/\s*\n\s*/g, '; ')}`,
      inputs: { file: e.spec.file, code: (err as { code?: string }).code },
      outcome: { status: 'failed', detail: 'invalid spec file; the running spec is kept' },
    });
    return;
  }
  try {
    await e.control.reload(next);
  } catch (err) {
    log.error({ err: (err as Error).message }, `reload of ${e.spec.file} failed`);
  }
}
