// Patroni under the host-partition fault of `npm run bench -- peers` (the run: bench/lib/peers-partition.ts;
// the PostgreSQL rows: bench/lib/peers-partition-postgres.ts). One network namespace per host: etcd in
// `e`, a node (Patroni and its PostgreSQL, both on the node's lab address) in `n1` and in `n2`, HAProxy
// in `client` routing by Patroni's REST check as in the process-fault rows (bench/lib/peers-postgres.ts),
// the same `psql` clients as Understudy's PostgreSQL row.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startNetnsEtcd } from '../../src/cli/netns-cluster.js';
import type { NetnsLab } from '../../src/cli/netns-lab.js';
import { sleep, until, type PartitionSystem } from './peers-partition.js';
import { pgWriter, psql } from './peers-partition-postgres.js';
import { patroniConfig } from './patroni-config.js';
import type { PatroniSettings } from './peers-postgres.js';

const NODES = ['n1', 'n2'] as const;
const PG_PORT = 5432;
const REST_PORT = 8008;
/** HAProxy's port inside `client`: the Patroni clients' address. */
const HAPROXY_PORT = 5000;

/** Writes node `node`'s Patroni configuration (on its lab address); returns the file. */
function writeNodeConfig(
  lab: NetnsLab,
  work: string,
  bin: string,
  node: string,
  s: PatroniSettings,
  etcd: string,
): string {
  const file = join(work, `${node}.yml`);
  const config = {
    name: node,
    work,
    address: lab.address(node),
    restPort: REST_PORT,
    pgPort: PG_PORT,
    dataDir: join(work, node),
    bin,
    etcd,
    socketDir: join(work, `${node}-sock`),
    trust: '0.0.0.0/0',
  };
  writeFileSync(file, patroniConfig(config, s));
  return file;
}

/** Patroni on etcd with `s`'s timings, two nodes, HAProxy; asynchronous replication (its default). */
export function patroniPartition(bin: string, s: PatroniSettings, stopMs: number): PartitionSystem {
  return {
    system: s.system,
    hosts: ['e', ...NODES],
    maxWaitMs: stopMs + s.ttl * 1000 + 30_000,
    async start(lab, work) {
      await startNetnsEtcd(lab, { members: ['e'], dataDir: work, heartbeatMs: 100, electionTimeoutMs: 1000 });
      const etcdHost = `${lab.address('e')}:2379`;
      if (process.getuid?.() === 0) spawnSync('chown', ['-R', 'postgres:postgres', work]);
      const start = (node: string): void => {
        const config = writeNodeConfig(lab, work, bin, node, s, etcdHost);
        // One socket directory per node: both listen on port 5432 (each in its namespace) on one filesystem.
        for (const d of [`${node}-log`, `${node}-sock`]) mkdirSync(join(work, d), { recursive: true });
        if (process.getuid?.() === 0) spawnSync('chown', ['-R', 'postgres:postgres', work]);
        const out = openSync(join(work, `${node}-postgres.log`), 'a');
        try {
          const argv = ['patroni', config];
          const [cmd, ...args] =
            process.getuid?.() === 0
              ? ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '--', ...argv]
              : argv;
          lab.exec(node, cmd!, args, { stdio: ['ignore', out, out], cwd: work });
        } finally {
          closeSync(out);
        }
      };
      const inRecovery = (node: string): string | undefined =>
        psql(lab, 'client', bin, lab.address(node), PG_PORT, 'SELECT pg_is_in_recovery()');
      start('n1');
      await until(
        () => inRecovery('n1') === 'f',
        90_000,
        () => `patroni n1 to lead (logs: ${work})`,
      );
      start('n2');
      psql(
        lab,
        'client',
        bin,
        lab.address('n1'),
        PG_PORT,
        'CREATE TABLE IF NOT EXISTS ids (id bigint PRIMARY KEY)',
      );
      // Streaming and caught up (not merely `replica`: the leader creates the slot at its next loop).
      await until(
        () =>
          psql(
            lab,
            'client',
            bin,
            lab.address('n1'),
            PG_PORT,
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND replay_lsn = pg_current_wal_lsn()",
          ) === '1',
        120_000,
        () => `patroni n2 to stream from n1 (logs: ${work})`,
      );
      const cfg = join(work, 'haproxy.cfg');
      writeFileSync(
        cfg,
        `global
  maxconn 100
defaults
  mode tcp
  retries 2
  timeout client 30m
  timeout connect 4s
  timeout server 30m
  timeout check 5s
listen primary
  bind 127.0.0.1:${HAPROXY_PORT}
  option httpchk OPTIONS /primary
  http-check expect status 200
  default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions
${NODES.map((n) => `  server ${n} ${lab.address(n)}:${PG_PORT} maxconn 100 check port ${REST_PORT}`).join('\n')}
`,
      );
      lab.exec('client', 'haproxy', ['-f', cfg, '-db'], { stdio: 'ignore' });
      await until(
        () => psql(lab, 'client', bin, '127.0.0.1', HAPROXY_PORT, 'SELECT 1') === '1',
        30_000,
        () => 'HAProxy to route to the Patroni primary',
      );
      let nextFirst = 1;
      return {
        target: `addr:127.0.0.1:${HAPROXY_PORT}`,
        master: async () => {
          for (const n of NODES) if (inRecovery(n) === 'f') return { host: n, port: PG_PORT };
          throw new Error('no Patroni primary answers');
        },
        tail: () => `logs: ${work}`,
        writer: (host, _name, target) => {
          const [, addr, port] = target.split(':');
          const first = nextFirst;
          nextFirst += 1_000_000_000;
          return pgWriter(lab, host, bin, addr!, Number(port), first);
        },
        readBack: async (keys) => {
          const want = new Set(keys);
          const deadline = Date.now() + 90_000;
          for (;;) {
            const out = psql(lab, 'client', bin, '127.0.0.1', HAPROXY_PORT, 'SELECT id FROM ids');
            if (out !== undefined) return new Set(out.split('\n').filter((k) => want.has(k)));
            if (Date.now() > deadline) throw new Error('reading back through HAProxy failed for 90 s');
            await sleep(500);
          }
        },
      };
    },
  };
}
