import type { LeadershipEvent } from '../../control/index.js';
import { formatDecision } from '../format-decision.js';
import { ExitCode, reportError } from '../exit-codes.js';
import { startReplica, type RunningReplica } from '../replica.js';

/** Options of `understudy control` (and of `understudy up --store etcd://…`). */
export interface ControlOptions {
  dataDir: string;
  file: string;
  /** `etcd://host:port[,host:port...][/prefix/]`. */
  store: string;
  /** Replica name. @default `<hostname>-<pid>` */
  name?: string;
  api?: string;
  /** Leader lease TTL in ms. @default 3000 */
  ttlMs?: number;
  /** The cluster key file: run instances on the `understudy agent`s found in the store. @default none (local) */
  clusterKey?: string;
  /** With `clusterKey`: the host new instances are placed on. @default the first live host by name */
  placeOn?: string;
  /** With `clusterKey`: how long a lost host's instances wait for it before moving, ms. @default 15000 */
  replaceLostAfterMs?: number;
  /** With `clusterKey`: reach the agents over HTTPS under the cluster CA. @default true */
  tls?: boolean;
}

/** One line for a leadership event. */
export function formatLeadership(event: LeadershipEvent, name: string): string | undefined {
  if (event.type === 'elected')
    return `understudy: ${name} leads the control plane (term ${event.leader.term})`;
  if (event.type === 'deposed') return `understudy: ${name} stopped leading: ${event.reason}`;
  if (event.leader && event.leader.id !== name)
    return `understudy: ${event.leader.id} leads (term ${event.leader.term}); ${name} is a standby`;
  if (!event.leader) return `understudy: no control leader at the moment; ${name} campaigns`;
  return undefined;
}

/**
 * `understudy control --store etcd://…`: a control-plane replica in the foreground. Any number may
 * run against one etcd; the leader runs the control loop (and the API), the others watch and take
 * over when its lease lapses. Stops on Ctrl-C, SIGTERM, SIGHUP or `understudy down` (resigning).
 */
export async function runControl(options: ControlOptions): Promise<number> {
  let running: RunningReplica | undefined;
  let wake: (reason: string) => void = () => undefined;
  let requested: string | undefined;
  const stopRequested = new Promise<string>((resolve) => (wake = resolve));
  const onSignal = (signal: NodeJS.Signals): void => {
    requested ??= signal;
    wake(signal);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  if (options.clusterKey && options.tls === false)
    process.stderr.write(
      'understudy: warning: TLS is off (--no-tls): the agent API, with the cluster key on every request, travels in clear\n',
    );
  try {
    try {
      running = await startReplica({
        specFile: options.file,
        dataDir: options.dataDir,
        store: options.store,
        ...(options.name ? { name: options.name } : {}),
        ...(options.api ? { apiListen: options.api } : {}),
        ...(options.ttlMs !== undefined ? { ttlMs: options.ttlMs } : {}),
        ...(options.clusterKey ? { clusterKey: options.clusterKey } : {}),
        ...(options.placeOn ? { placeOn: options.placeOn } : {}),
        ...(options.replaceLostAfterMs !== undefined
          ? { replaceLostAfterMs: options.replaceLostAfterMs }
          : {}),
        ...(options.tls === false ? { tls: false } : {}),
        onDecision: (d) => {
          if (d.outcome.status !== 'pending') process.stdout.write(formatDecision(d) + '\n');
        },
        onLeadership: (event, name) => {
          const line = formatLeadership(event, name);
          if (line) process.stdout.write(line + '\n');
        },
        onError: (err, where) =>
          process.stderr.write(`understudy: ${where} failed: ${(err as Error).message ?? String(err)}\n`),
        onShutdownRequest: (reason) => {
          requested ??= reason;
          wake(reason);
        },
      });
    } catch (err) {
      return reportError(err);
    }
    process.stdout.write(
      `understudy: control replica ${running.name} on ${options.store}; data ${running.dataDir}\n`,
    );
    const reason = await stopRequested;
    process.stdout.write(`understudy: stopping (${reason})\n`);
    await running.close();
    process.stdout.write('understudy: stopped\n');
    return ExitCode.Ok;
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}
