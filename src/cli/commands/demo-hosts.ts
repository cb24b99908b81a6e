// `understudy demo --part hosts`: Understudy across three real hosts (network namespaces on one bridge,
// ../netns-lab.ts, started by ../netns-cluster.ts, shared with the tests' harness) in two zones. etcd and a control replica run in a fourth namespace, `store`, with the
// router; an `understudy agent` runs in each host. The kv example runs hot and write-through with its
// echo placed on another host; under unique writes the primary's host is cut off (its switch port
// down) for 10 s, and the narration shows the suspicion, the self-fencing, the failover, the first
// write acknowledged after the cut, the count of acknowledged writes missing or acknowledged by the
// old primary alone, and the old primary rejoining as an echo once healed.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureClusterKey } from '../../agent/index.js';
import type { ControlDecision, InstanceRecord } from '../../control/index.js';
import { ExitCode } from '../exit-codes.js';
import {
  netnsUntil,
  startNetnsAgent,
  startNetnsControl,
  startNetnsEtcd,
  writeNetnsKvSpec,
  type NetnsEtcd,
  type NetnsProc,
} from '../netns-cluster.js';
import { netnsSupport, NetnsLab } from '../netns-lab.js';

/** Options of {@link hostsPart}. */
export interface HostsDemoOptions {
  /** Where etcd, control and the instances keep their data (wiped by the demo before it starts). */
  dataDir: string;
  /** Unique writes per second through the router. @default 60 */
  rate?: number;
  /** How long the primary's host stays cut off, ms. @default 10000 */
  partitionMs?: number;
}

const ZONES: Record<string, string> = { h1: 'z1', h2: 'z2', h3: 'z1' };
const ROUTER_PORT = 18080; // inside the store namespace: nothing else listens there
const clientJs = fileURLToPath(new URL('./demo-hosts-client.js', import.meta.url));

const say = (line: string): void => void process.stdout.write(`${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Why the hosts part cannot run here, or undefined when it can. */
export function hostsDemoUnavailable(): string | undefined {
  const support = netnsSupport();
  if (!support.ok)
    return `demo (hosts): needs Linux network namespaces, which cannot be created here: ${support.reason}. It makes three hosts with \`ip netns\` (iproute2) and a bridge, so run it as root (or with CAP_SYS_ADMIN and CAP_NET_ADMIN), e.g. \`sudo npm run demo -- --part hosts\`; the other parts need none of this.`;
  const etcd = process.env.UNDERSTUDY_ETCD_BIN ?? '/usr/bin/etcd';
  if (!existsSync(etcd))
    return `demo (hosts): needs etcd (the hosts share their state through it) and ${etcd} does not exist: install it (apt-get install -y etcd-server) or set UNDERSTUDY_ETCD_BIN`;
  if (!existsSync(clientJs))
    return `demo (hosts): the built CLI is missing (${clientJs}); run \`npm run build\` first`;
  return undefined;
}

/** The demo's client inside the store namespace, driven over IPC. */
class Client {
  #next = 0;
  readonly #pending = new Map<number, (m: Record<string, unknown>) => void>();
  private constructor(readonly child: ChildProcess) {}

  static async start(lab: NetnsLab): Promise<Client> {
    const child = lab.exec(
      'store',
      process.execPath,
      [clientJs, `http://127.0.0.1:${ROUTER_PORT}`, `${lab.address('store')}:2379`],
      { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
    );
    const c = new Client(child);
    await new Promise<void>((resolve, reject) => {
      child.on('message', (m: Record<string, unknown>) => {
        if (m.type === 'ready') resolve();
        const done = typeof m.id === 'number' ? c.#pending.get(m.id) : undefined;
        if (done) {
          c.#pending.delete(m.id as number);
          done(m);
        }
      });
      child.once('exit', (code) => reject(new Error(`the demo's client exited (${code})`)));
    });
    return c;
  }

  call(
    type: string,
    body: Record<string, unknown> = {},
    timeoutMs = 60_000,
  ): Promise<Record<string, unknown>> {
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the demo's client did not answer ${type}`)),
        timeoutMs,
      );
      this.#pending.set(id, (m) => {
        clearTimeout(timer);
        if (typeof m.error === 'string') reject(new Error(m.error));
        else resolve(m);
      });
      this.child.send({ id, type, ...body });
    });
  }

  async records(): Promise<InstanceRecord[]> {
    const r = (await this.call('list', { prefix: 'instances/' })) as { values: string[] };
    return r.values.map((v) => JSON.parse(v) as InstanceRecord);
  }

  async decisions(): Promise<ControlDecision[]> {
    const r = (await this.call('list', { prefix: 'events/' })) as { values: string[] };
    return r.values.map((v) => JSON.parse(v) as ControlDecision).sort((a, b) => a.seq - b.seq);
  }
}

/** Waits for `fn` to hold, up to `ms`; false when it did not or the demo was stopped. */
const until = netnsUntil;

/** The puts in an instance's kv log (key → value), read from its state directory. */
function kvPuts(stateDir: string): Map<string, string> {
  const out = new Map<string, string>();
  let text = '';
  try {
    text = readFileSync(join(stateDir, 'kv.log'), 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    if (line.length < 10) continue;
    try {
      const rec = JSON.parse(line.slice(9)) as { op: string; key?: string; value?: string };
      if (rec.op === 'put' && rec.key) out.set(rec.key, rec.value ?? '');
    } catch {
      // a torn last line
    }
  }
  return out;
}

/**
 * Runs the hosts part; resolves to the exit code (non-zero when network namespaces cannot be made
 * here, when the failover did not happen, or when an acknowledged write is missing). The lab's
 * namespaces are removed in every path: here on return or error, by the lab's exit hook otherwise.
 */
export async function hostsPart(options: HostsDemoOptions, signal: AbortSignal): Promise<number> {
  const unavailable = hostsDemoUnavailable();
  if (unavailable) {
    process.stderr.write(`${unavailable}\n`);
    return ExitCode.Failure;
  }
  const rate = options.rate ?? 60;
  const partitionMs = options.partitionMs ?? 10_000;
  const lab = NetnsLab.create({ hosts: ['store', ...Object.keys(ZONES)] });
  // The first Ctrl-C stops the demo through `signal` (it winds down and removes the lab); a second
  // one must not kill the process without its clean-up: the lab is removed, then the process exits.
  let signals = 0;
  const onSignal = (): void => {
    if (++signals < 2) return;
    lab.closeSync();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await run(lab, options.dataDir, rate, partitionMs, signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    say('demo (hosts): stopping every process and removing the namespaces');
    await lab.close();
    say('demo (hosts): stopped cleanly');
  }
}

async function run(
  lab: NetnsLab,
  dir: string,
  rate: number,
  partitionMs: number,
  signal: AbortSignal,
): Promise<number> {
  const hosts = Object.keys(ZONES);
  say(
    `\ndemo (hosts): three hosts in two zones, each a network namespace on one bridge: ${hosts.map((h) => `${h} (${ZONES[h]}, ${lab.address(h)})`).join(', ')}; etcd, control and the router on a fourth, store (${lab.address('store')})`,
  );
  let etcd: NetnsEtcd;
  try {
    etcd = await startNetnsEtcd(lab, { members: ['store'], dataDir: dir });
  } catch (e) {
    return fail(signal, (e as Error).message);
  }
  const key = join(dir, 'cluster.key');
  ensureClusterKey(key);
  const agents = new Map<string, NetnsProc>();
  for (const host of hosts) {
    const opts = { store: etcd.url, host, zone: ZONES[host] ?? '', clusterKey: key };
    const { proc, serving } = await startNetnsAgent(lab, opts, signal);
    agents.set(host, proc);
    if (!serving) return fail(signal, `the agent of ${host} did not start: ${proc.out().slice(-1000)}`);
  }
  say(
    `demo (hosts): an understudy agent runs on each host (lease TTL 2 s, heartbeats to the control leader)`,
  );
  const spec = join(dir, 'kv.yaml');
  writeNetnsKvSpec(spec, ROUTER_PORT);
  const control = startNetnsControl(lab, 'store', {
    spec,
    store: etcd.url,
    name: 'c1',
    clusterKey: key,
    dataDir: join(dir, 'control'),
    replaceLostAfterMs: 60_000,
  });
  const client = await Client.start(lab);
  let primary: InstanceRecord | undefined;
  let echo: InstanceRecord | undefined;
  const paired = await until(
    async () => {
      const recs = await client.records();
      primary = recs.find((r) => r.role === 'primary' && r.phase === 'running');
      echo = recs.find((r) => r.role === 'echo' && r.phase === 'running');
      return primary !== undefined && echo !== undefined && (await client.call('probe')).status === 200;
    },
    60_000,
    signal,
  );
  if (!paired || !primary || !echo)
    return fail(
      signal,
      `the kv service did not start with an echo within 60 s: ${control.out().slice(-1500)}`,
    );
  const old = primary;
  const firstEcho = echo;
  for (const d of (await client.decisions()).filter((x) => x.kind === 'place'))
    say(`  placement: ${d.what} — ${d.why}`);
  say(
    `demo (hosts): kv runs hot and write-through: primary ${old.id} on ${old.host} (${ZONES[old.host]}), echo ${firstEcho.id} on ${firstEcho.host} (${ZONES[firstEcho.host]}); a write is acknowledged only once both applied it`,
  );
  await client.call('load', { rate, prefix: 'demo' });
  say(`demo (hosts): ${rate} unique writes/s through the router`);
  await sleep(2000);
  if (signal.aborted) return ExitCode.Ok;

  const cutAt = Date.now();
  lab.partition(old.host);
  say(
    `demo (hosts): t=0 ms: ${old.host}'s link is down — the primary ${old.id} and its agent are cut off from the store and every other host for ${partitionMs / 1000} s`,
  );
  const seen = { suspect: false, fenced: false, failover: false, firstAck: false };
  const placed = new Set<number>();
  const agentOut = agents.get(old.host)?.out ?? (() => '');
  await until(
    async () => {
      const t = (at: number): string => `t=${at - cutAt} ms`;
      const ds = (await client.decisions()).filter((d) => d.at >= cutAt);
      const suspect = ds.find((d) => d.kind === 'host-lost' && d.inputs.host === old.host);
      if (suspect && !seen.suspect) {
        seen.suspect = true;
        say(`  ${t(suspect.at)}: suspected — ${suspect.what} (${suspect.why})`);
      }
      const fenceLine = agentOut()
        .split('\n')
        .find((l) => l.includes(`self-fenced primary ${old.id}`));
      if (fenceLine && !seen.fenced) {
        seen.fenced = true;
        say(
          `  ${t(Date.now())}: self-fenced — the agent of ${old.host}: ${fenceLine.replace(/^.*?self-fenced/, 'self-fenced')}`,
        );
        say(
          `    (under write-through ${old.id} could not acknowledge a write after the cut anyway: each one needs its echo, which it cannot reach, and which refuses its old epoch once promoted)`,
        );
      }
      const failover = ds.find(
        (d) =>
          d.kind === 'failover' && d.what.includes(`in place of ${old.id}`) && d.outcome.status !== 'pending',
      );
      if (failover && !seen.failover) {
        seen.failover = true;
        say(
          `  ${t(failover.at)}: failover — ${failover.what} — ${failover.why} [${failover.outcome.status}]`,
        );
      }
      for (const d of ds.filter((x) => x.kind === 'place' && !placed.has(x.seq))) {
        placed.add(d.seq);
        say(`  ${t(d.at)}: placement — ${d.what} — ${d.why}`);
      }
      const ackAt = (await client.call('first-ack-after', { at: cutAt })).ackAt;
      if (typeof ackAt === 'number' && !seen.firstAck) {
        seen.firstAck = true;
        say(`  ${t(ackAt)}: the first write sent after the cut is acknowledged (through the new primary)`);
      }
      return seen.suspect && seen.fenced && seen.failover && seen.firstAck;
    },
    Math.max(partitionMs, 20_000),
    signal,
  );
  if (signal.aborted) return ExitCode.Ok;
  const unseen = [
    seen.suspect ? '' : `the suspicion of ${old.host}`,
    seen.fenced ? '' : `the self-fencing of ${old.id}`,
    seen.failover ? '' : `a failover in place of ${old.id}`,
    seen.firstAck ? '' : 'a write acknowledged after the cut',
  ].filter(Boolean);
  if (unseen.length > 0) say(`demo (hosts): not seen within ${Date.now() - cutAt} ms: ${unseen.join(', ')}`);
  const next = (await client.records()).find(
    (r) => r.role === 'primary' && r.phase === 'running' && r.id !== old.id,
  );
  await sleep(Math.max(0, cutAt + partitionMs - Date.now()));
  const load = (await client.call('stop-load')) as {
    acked: [string, string][];
    writes: number;
    errors: number;
  };
  // Read before the heal: the old primary's state is replaced when it rejoins.
  // Split brain: writes acknowledged by the old primary alone (it holds them, its successor does not).
  const oldPuts = kvPuts(old.stateDir);
  const nextPuts = next ? kvPuts(next.stateDir) : undefined;
  const splitBrain = nextPuts
    ? load.acked.filter(([k, v]) => oldPuts.get(k) === v && nextPuts.get(k) !== v).length
    : undefined;
  lab.heal(old.host);
  say(`demo (hosts): t=${Date.now() - cutAt} ms: ${old.host}'s link is back up`);
  const missing = ((await client.call('missing', { acked: load.acked }, 120_000)) as { missing: string[] })
    .missing;
  say(
    `demo (hosts): ${load.writes} writes sent, ${load.errors} not acknowledged (refused or timed out while the failover ran)`,
  );
  say(
    `demo (hosts): acknowledged writes ${load.acked.length}, missing ${missing.length}, split brain ${splitBrain ?? '? (no new primary to compare with)'}`,
  );
  const rejoined = await until(
    async () =>
      (await client.records()).some(
        (r) => r.id === old.id && r.role === 'echo' && r.phase === 'running' && r.host === old.host,
      ),
    40_000,
    signal,
  );
  if (rejoined)
    say(`demo (hosts): ${old.id} rejoined on ${old.host} as an echo of ${next?.id ?? 'the new primary'}`);
  else if (!signal.aborted) say(`demo (hosts): ${old.id} did not rejoin as an echo within 40 s`);
  client.child.send({ id: 0, type: 'exit' });
  const ok = seen.fenced && seen.failover && missing.length === 0 && splitBrain === 0;
  return ok || signal.aborted ? ExitCode.Ok : ExitCode.Failure;
}

function fail(signal: AbortSignal, why: string): number {
  if (signal.aborted) return ExitCode.Ok;
  process.stderr.write(`demo (hosts): ${why}\n`);
  return ExitCode.Failure;
}
