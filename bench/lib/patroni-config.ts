// The Patroni node configuration both PostgreSQL peer benches write (bench/lib/peers-postgres.ts on
// loopback, bench/lib/peers-partition-patroni.ts on a namespace lab): one text, so that the two rows
// compare the same Patroni.
import { join } from 'node:path';
import type { PatroniSettings } from './peers-postgres.js';

/** Where one Patroni node listens and keeps its files. */
export interface PatroniNode {
  name: string;
  /** The bench's working directory (logs, pgpass). */
  work: string;
  /** The address its REST API and its PostgreSQL listen on (and advertise). */
  address: string;
  restPort: number;
  pgPort: number;
  dataDir: string;
  /** PostgreSQL's programs. */
  bin: string;
  /** The etcd endpoint (`host:port`). */
  etcd: string;
  /** PostgreSQL's unix socket directory. */
  socketDir: string;
  /** The clients `pg_hba` trusts (CIDR). */
  trust: string;
}

/** A Patroni node's YAML with the DCS timings of `s` (asynchronous replication, pg_rewind on). */
export function patroniConfig(n: PatroniNode, s: PatroniSettings): string {
  return `scope: bench
name: ${n.name}
log: { level: INFO, dir: ${join(n.work, `${n.name}-log`)} }
restapi: { listen: ${n.address}:${n.restPort}, connect_address: ${n.address}:${n.restPort} }
etcd3: { host: ${n.etcd} }
bootstrap:
  dcs:
    ttl: ${s.ttl}
    loop_wait: ${s.loopWait}
    retry_timeout: ${s.retryTimeout}
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: true
      parameters: { wal_level: replica, hot_standby: 'on', max_wal_senders: 10, max_replication_slots: 10, wal_log_hints: 'on' }
  initdb: [{ encoding: UTF8 }, data-checksums]
postgresql:
  listen: ${n.address}:${n.pgPort}
  connect_address: ${n.address}:${n.pgPort}
  data_dir: ${n.dataDir}
  bin_dir: ${n.bin}
  pgpass: ${join(n.work, `${n.name}.pgpass`)}
  authentication:
    replication: { username: replicator, password: rep }
    superuser: { username: postgres, password: pw }
    rewind: { username: postgres, password: pw }
  parameters: { unix_socket_directories: '${n.socketDir}' }
  pg_hba:
    - host replication replicator ${n.trust} trust
    - host all all ${n.trust} trust
`;
}
