// The host-partition fault of `npm run bench -- peers`, PostgreSQL rows (the Redis ones and the run
// itself: bench/lib/peers-partition.ts). Understudy runs examples/postgres (external, synchronous) on
// the same lab as the Redis rows — etcd and the control plane with its router in `s1`, an agent in `h1`
// and `h2` — from a copy whose PostgreSQL listens on every address of its host and trusts the lab's
// hosts (the recipe listens on and trusts 127.0.0.1 only). The clients are `psql` sessions in
// namespaces, inserting unique ids one at a time, each `RETURNING` the server that acknowledged it.
// Patroni's rows: bench/lib/peers-partition-patroni.ts.
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { NetnsLab } from '../../src/cli/netns-lab.js';
import type { PeerRow, PeerRunOptions } from '../peers.js';
import { PATRONI_SETTINGS, postgresBin } from './peers-postgres.js';
import { commandExists } from './peers.js';
import { patroniPartition } from './peers-partition-patroni.js';
import {
  now,
  partitionSupport,
  runPartitionRows,
  sleep,
  startUnderstudyLab,
  until,
  type InstanceRecord,
  type PartitionAck,
  type PartitionSystem,
  type Writer,
} from './peers-partition.js';
import { root } from './spec-up.js';

/** One statement through `psql` inside namespace `from`; its unaligned output, undefined on failure. */
export function psql(
  lab: NetnsLab,
  from: string,
  bin: string,
  host: string,
  port: number,
  sql: string,
): string | undefined {
  const r = lab.run(from, join(bin, 'psql'), [
    ...['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-h', host, '-p', String(port)],
    ...['-U', 'postgres', '-d', 'postgres', '-c', sql],
  ]);
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/**
 * Which server acknowledged an insert: its port and its postmaster's start (µs since the epoch) — not
 * `inet_server_addr()`, which is the address the connection came in on: a client through Understudy's
 * router reaches the primary through its host agent's TLS ingress (127.0.0.1), one on that host
 * straight at its lab address, so one server had two names (and a promoted echo on another host could
 * share the first one's loopback address and port).
 */
const POSTMASTER_STARTED = '(extract(epoch FROM pg_postmaster_start_time()) * 1000000)::bigint';

/**
 * A client inserting unique ids from `firstId` into `ids` at host:port, from namespace `from`: one psql
 * session fed one autocommit insert at a time; an insert unanswered within 2 s (a host cut off: no
 * reset ever comes) ends the session — its outcome unknown, its id never reused nor counted — and a new
 * session starts at once.
 */
export function pgWriter(
  lab: NetnsLab,
  from: string,
  bin: string,
  host: string,
  port: number,
  firstId: number,
): Writer {
  const acks: PartitionAck[] = [];
  let next = firstId;
  let stopped = false;
  let current: ReturnType<NetnsLab['exec']> | undefined;
  const session = (): Promise<void> =>
    new Promise((resolve) => {
      const child = lab.exec(
        from,
        join(bin, 'psql'),
        ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-h', host, '-p', String(port), '-U', 'postgres'],
        {
          stdio: ['pipe', 'pipe', 'ignore'],
          env: { ...process.env, PGDATABASE: 'postgres', PGCONNECT_TIMEOUT: '2' },
        },
      );
      current = child;
      let carry = '';
      let sent = 0;
      let timer: NodeJS.Timeout | undefined;
      const send = (): void => {
        if (stopped || !child.stdin?.writable) return;
        sent = now();
        child.stdin.write(
          `INSERT INTO ids VALUES (${next}) RETURNING id, inet_server_port(), ${POSTMASTER_STARTED};\n`,
        );
        timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      };
      child.stdin?.on('error', () => undefined);
      child.stdout?.on('data', (c: Buffer) => {
        const lines = (carry + c.toString()).split('\n');
        carry = lines.pop() ?? '';
        for (const line of lines) {
          const m = /^(\d+)\|(\d+)\|(\d+)$/.exec(line.trim());
          if (!m || Number(m[1]) !== next) continue;
          clearTimeout(timer);
          acks.push({ k: m[1]!, s: `${m[2]}@${m[3]}`, sent, at: now() });
          next++;
          send();
        }
      });
      child.once('exit', () => {
        clearTimeout(timer);
        // The id in flight has an unknown outcome: never reused, never counted as acknowledged.
        next++;
        resolve();
      });
      send();
    });
  const done = (async () => {
    while (!stopped) {
      await session();
      if (!stopped) await sleep(20);
    }
  })();
  return {
    acks,
    stop: async () => {
      stopped = true;
      current?.kill('SIGKILL');
      await done;
    },
  };
}

/**
 * Understudy with examples/postgres on the lab (agents' `--lease-ttl` at its default, 10 s; the
 * self-fence bound at its default, 600 ms); ready once the standby is synchronous and `ids` exists.
 */
function understudyPostgres(bin: string, stopMs: number): PartitionSystem {
  return {
    system: 'understudy (external, synchronous)',
    hosts: ['s1', 'h1', 'h2'],
    maxWaitMs: stopMs + 30_000,
    async start(lab, work) {
      const dir = join(work, 'recipe');
      cpSync(join(root, 'examples/postgres'), dir, { recursive: true });
      const patch = (file: string, from: string, to: string): void => {
        const text = readFileSync(join(dir, file), 'utf8');
        if (!text.includes(from)) throw new Error(`examples/postgres/${file} no longer has ${from}`);
        writeFileSync(join(dir, file), text.replace(from, to));
      };
      patch('lib.sh', "listen_addresses = '127.0.0.1'", "listen_addresses = '*'");
      patch(
        'run.sh',
        'echo "host replication all 127.0.0.1/32 trust"',
        'printf "host all all 0.0.0.0/0 trust\\nhost replication all 0.0.0.0/0 trust\\n"',
      );
      const doc = parse(readFileSync(join(dir, 'understudy.yaml'), 'utf8')) as {
        services: Record<string, unknown>[];
      };
      const svc = doc.services[0]!;
      svc['env'] = { ...(svc['env'] as Record<string, string>), PG_BIN: bin };
      (svc['routing'] as Record<string, unknown>)['listen'] = '0.0.0.0:5432';
      const spec = join(dir, 'understudy.yaml');
      writeFileSync(spec, stringify(doc));
      const { control, records } = await startUnderstudyLab(lab, work, spec, 10_000);
      const router = lab.address('s1');
      const primary = (): InstanceRecord | undefined =>
        records().find((r) => r.role === 'primary' && r.phase === 'running');
      await until(
        () => {
          const p = primary();
          if (!p || !records().some((r) => r.role === 'echo' && r.phase === 'running')) return false;
          if (
            psql(
              lab,
              'client',
              bin,
              router,
              5432,
              'CREATE TABLE IF NOT EXISTS ids (id bigint PRIMARY KEY)',
            ) === undefined
          )
            return false;
          const sync = "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'";
          return psql(lab, 'client', bin, lab.address(p.host), p.ports['pg'] ?? 0, sync) === '1';
        },
        180_000,
        () => `the primary, its synchronous standby and the table: ${control.out().slice(-1500)}`,
      );
      let nextFirst = 1;
      return {
        target: `addr:${router}:5432`,
        master: async () => {
          const p = primary();
          if (!p) throw new Error('no running primary recorded');
          return { host: p.host, port: p.ports['pg'] ?? 0 };
        },
        tail: () => control.out().slice(-1500),
        writer: (host, _name, target) => {
          const [, addr, port] = target.split(':');
          const first = nextFirst;
          nextFirst += 1_000_000_000;
          return pgWriter(lab, host, bin, addr!, Number(port), first);
        },
        readBack: async (keys) => {
          const want = new Set(keys);
          const deadline = Date.now() + 60_000;
          for (;;) {
            const out = psql(lab, 'client', bin, router, 5432, 'SELECT id FROM ids');
            if (out !== undefined) return new Set(out.split('\n').filter((k) => want.has(k)));
            if (Date.now() > deadline) throw new Error('reading back through the router failed for 60 s');
            await sleep(500);
          }
        },
      };
    },
  };
}

/**
 * The PostgreSQL rows of the partition fault: Understudy's, then Patroni's at each of its settings
 * (bench/lib/peers-partition-patroni.ts), measured as the Redis ones are; without network namespaces
 * (`base`: what {@link partitionSupport} says), PostgreSQL or Patroni, rows that say why. Never throws.
 */
export async function runPostgresPartitionPeers(
  o: PeerRunOptions,
  base: { ok: true } | { ok: false; reason: string } = partitionSupport(['etcd', 'etcdctl']),
): Promise<PeerRow[]> {
  const bin = postgresBin();
  const support: { ok: true } | { ok: false; reason: string } = !base.ok
    ? base
    : bin
      ? { ok: true }
      : { ok: false, reason: 'no PostgreSQL server (/usr/lib/postgresql/<v>/bin) is installed' };
  const systems = [
    understudyPostgres(bin ?? '', o.stopMs),
    ...PATRONI_SETTINGS.map((p) => patroniPartition(bin ?? '', p, o.stopMs)),
  ];
  const patroni = commandExists('patroni') && commandExists('haproxy');
  const rows = await runPartitionRows(
    'postgres',
    systems.filter((x) => patroni || !x.system.startsWith('patroni')),
    o,
    support,
  );
  if (!patroni)
    for (const p of PATRONI_SETTINGS.filter((x) => !o.systems || o.systems.some((y) => x.system.includes(y))))
      rows.push({
        system: p.system,
        service: 'postgres',
        fault: 'partition',
        runs: 0,
        p50Ms: NaN,
        p99Ms: NaN,
        lostAcked: 0,
        splitBrain: 0,
        skipped: 'patroni or haproxy is not installed',
      });
  return rows;
}
