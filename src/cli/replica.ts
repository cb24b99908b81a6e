import { createHmac } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { clusterTlsIdentity, HostAgentRegistry, readClusterKey, type TlsIdentity } from '../agent/index.js';
import { ApiServer, tokenPath } from '../api/index.js';
import { loadSpecFile, type LoadedSpec } from '../config/index.js';
import {
  ControlPlane,
  ControlReplica,
  listReplicas,
  type ControlDecision,
  type LeaderInfo,
  type LeadershipEvent,
  type LeaderTerm,
  type ReplicaView,
} from '../control/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { ProcessRuntime } from '../runtime/index.js';
import { StandbyControl, standbyListen } from './standby-control.js';
import {
  acquireDataDirLock,
  EtcdStateStore,
  parseEtcdUrl,
  prepareDataDir,
  type StateStore,
} from '../store/index.js';

/** Options of {@link startReplica}: a control-plane replica on etcd (`understudy control`, `up --store etcd://`). */
export interface ReplicaRunOptions {
  specFile: string;
  /** Local data directory (instance logs and state, the API's api.json); the spec's `dataDir` wins. */
  dataDir: string;
  /** `etcd://host:port[,host:port...][/prefix/]`. */
  store: string;
  /** This replica's name. @default `<hostname>-<pid>` */
  name?: string;
  /** Overrides the spec's `api.listen`: the leader's API while this replica leads, the standby API otherwise. */
  apiListen?: string;
  /** Leader lease TTL in ms (whole seconds on etcd). @default 3000 */
  ttlMs?: number;
  /**
   * The cluster key file. Given, the replica runs no instance itself: each term's control plane reaches
   * the `understudy agent` processes found in the store (`hosts/*`, a {@link HostAgentRegistry}) and
   * leaves their instances running when the term ends (the next leader adopts them).
   * @default none: the term runs the instances with this process's local agent, as `up` does
   */
  clusterKey?: string;
  /**
   * With `clusterKey`: the host new primaries are pinned to; echoes are placed by src/policy/placement.ts
   * (off their primary's host). @default none: every instance placed by the policy
   */
  placeOn?: string;
  /**
   * With `clusterKey`: how long the instances of a host whose lease lapsed wait for it before they are
   * re-created on another host, ms. @default 15000 (`ClusterHostsOptions.replaceAfterMs`)
   */
  replaceLostAfterMs?: number;
  /** With `clusterKey`: how long a term waits for a live host before giving up, ms. @default 30000 */
  hostWaitMs?: number;
  /**
   * With `clusterKey`: reach the agents over HTTPS, verifying each against the cluster CA
   * (`cluster-ca.pem` beside the cluster key, created by the first process that needs it) and
   * presenting a certificate of this replica issued from it. false: plain HTTP (warned about).
   * @default true
   */
  tls?: boolean;
  onDecision?: (decision: ControlDecision) => void;
  onLeadership?: (event: LeadershipEvent, name: string) => void;
  onError?: (error: unknown, where: string) => void;
  onShutdownRequest?: (reason: string) => void;
}

/** The work of a term as the runner keeps it. */
interface RunningTerm extends LeaderTerm {
  control: ControlPlane;
  api: ApiServer;
}

/** A running replica. */
export interface RunningReplica {
  spec: LoadedSpec;
  dataDir: string;
  name: string;
  replica: ControlReplica;
  /** The control plane and API while this replica leads. */
  current(): { control: ControlPlane; api: ApiServer } | undefined;
  /** The standby's API (reads from the store, writes refused naming the leader) while it does not lead. */
  standbyApi(): ApiServer | undefined;
  /** Stops the term (if leading), resigns, closes the store and releases the data directory. Idempotent. */
  close(): Promise<void>;
}

/** Leadership as shown by `GET /v1/status` (`control`) and `understudy status`. */
export interface LeadershipStatus {
  store: string;
  leader?: LeaderInfo;
  replicas: ReplicaView[];
}

/**
 * Starts a control-plane replica against etcd: it campaigns, and while it leads runs a control plane
 * (with this process's local agent, as `up` does), writing through the guarded store, and the API. A
 * standby only watches. Thrown before anything runs: usage (bad connection string), config, and
 * store-unavailable errors.
 */
export async function startReplica(options: ReplicaRunOptions): Promise<RunningReplica> {
  const target = parseEtcdUrl(options.store);
  const spec = loadSpecFile(options.specFile);
  const secret = options.clusterKey === undefined ? undefined : readClusterKey(resolve(options.clusterKey));
  const dataDir = resolve(spec.spec.dataDir ? resolve(spec.dir, spec.spec.dataDir) : options.dataDir);
  prepareDataDir(dataDir);
  // Replicas of one cluster share the API token (derived from the cluster key): a client of any
  // replica's API can follow a standby's NOT_LEADER answer to the leader with the same token.
  if (secret !== undefined) shareApiToken(dataDir, secret);
  const name = options.name ?? `${hostname()}-${process.pid}`;
  const release = await acquireDataDirLock(dataDir);
  let store: EtcdStateStore;
  try {
    store = await EtcdStateStore.create({
      endpoints: target.endpoints,
      ...(target.prefix ? { prefix: target.prefix } : {}),
    });
  } catch (err) {
    await release();
    throw err;
  }
  // The agents are reached over HTTPS under the cluster CA (its fingerprint pinned in the store).
  let tls: TlsIdentity | undefined;
  if (secret !== undefined && options.tls !== false) {
    try {
      tls = await clusterTlsIdentity({
        clusterKeyFile: resolve(options.clusterKey!),
        name: `control-${name}`,
        store,
      });
    } catch (err) {
      await store.close();
      await release();
      throw err;
    }
  }
  /** The agents of a term: the hosts in the store, and the one new instances are placed on. */
  const openAgents = async (
    guarded: StateStore,
    key: string,
  ): Promise<{ registry: HostAgentRegistry; host: string }> => {
    const registry = await HostAgentRegistry.open({
      store: guarded,
      secret: key,
      ...(tls ? { tls } : {}),
      remote: { reconnectMs: 100 },
      ...(options.onError ? { onError: (err) => options.onError?.(err, 'the watch of hosts/') } : {}),
    });
    const deadline = Date.now() + (options.hostWaitMs ?? 30_000);
    for (;;) {
      const live = registry
        .all()
        .map((a) => a.host)
        .sort();
      const host = options.placeOn ?? live[0];
      if (host !== undefined && registry.has(host)) return { registry, host };
      if (Date.now() > deadline) {
        await registry.close();
        throw new UnderstudyError(
          ErrorCode.AgentUnreachable,
          options.placeOn
            ? `no live agent for host '${options.placeOn}' (--place-on) in the store`
            : 'no live agent in the store (start `understudy agent --store … --host NAME`)',
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  let term: RunningTerm | undefined;
  let leadership: LeadershipStatus = { store: options.store, replicas: [] };
  let closing = false;
  /** While this replica does not lead: an API that reads the store and sends writes to the leader. */
  let standby: { control: StandbyControl; api: ApiServer } | undefined;
  let standbySteps: Promise<void> = Promise.resolve();
  const standbyStep = (step: () => Promise<void>): Promise<void> =>
    (standbySteps = standbySteps
      .then(step)
      .catch((err: unknown) => options.onError?.(err, 'the standby API')));
  const startStandby = (): Promise<void> =>
    standbyStep(async () => {
      if (closing || term || standby) return;
      const control = await StandbyControl.create({
        store,
        specs: spec.spec.services,
        leader: () => late.replica?.leader(),
      });
      try {
        const api = await ApiServer.start({
          control,
          dataDir,
          listen: standbyListen(options.apiListen ?? spec.spec.api.listen),
          metricsPublic: spec.spec.api.metricsPublic,
          ...(options.onShutdownRequest ? { onShutdown: options.onShutdownRequest } : {}),
          status: () => ({ runtime: 'standby', specFile: spec.file, control: leadership }),
        });
        standby = { control, api };
        void late.replica?.setAddress(api.endpoint.url).catch(() => undefined);
      } catch (err) {
        control.close();
        throw err;
      }
    });
  const stopStandby = (): Promise<void> =>
    standbyStep(async () => {
      const s = standby;
      standby = undefined;
      if (!s) return;
      await s.api.close();
      s.control.close();
    });
  const startTerm = async (
    guarded: StateStore,
    leader: LeaderInfo,
    previous: LeaderInfo | undefined,
  ): Promise<LeaderTerm> => {
    // The leader's API takes the standby's place (and its address, when it is a fixed one).
    await stopStandby();
    const agents = secret === undefined ? undefined : await openAgents(guarded, secret);
    const runtime = agents ? undefined : await ProcessRuntime.create({});
    let control: ControlPlane | undefined;
    try {
      control = await ControlPlane.create({
        spec,
        dataDir,
        store: guarded,
        ...(agents ? { agents: agents.registry, host: agents.host } : { runtime: runtime! }),
        // The leader's routers reach instances on other hosts through their agents' TLS ingress.
        ...(agents && tls ? { upstreamTls: tls } : {}),
        ...(agents
          ? {
              hosts: {
                ...(options.placeOn ? { placeOn: options.placeOn } : {}),
                ...(options.replaceLostAfterMs !== undefined
                  ? { replaceAfterMs: options.replaceLostAfterMs }
                  : {}),
              },
            }
          : {}),
      });
      if (options.onDecision) control.decisions.subscribe(options.onDecision);
      control.decisions.record({
        kind: 'leadership',
        service: '',
        what: `lead the control plane as ${name} (term ${leader.term})`,
        why: previous
          ? `the previous leader ${previous.id} is gone (its lease lapsed or it resigned)`
          : 'no control replica was leading',
        inputs: { replica: name, term: leader.term, previous: previous?.id ?? null, store: options.store },
        outcome: { status: 'ok' },
      });
      // Recorded intents (a promotion the previous leader left half-done) are resumed by start().
      await control.start();
      const api = await ApiServer.start({
        control,
        dataDir,
        listen: options.apiListen ?? spec.spec.api.listen,
        telemetry: control.telemetry,
        metricsPublic: spec.spec.api.metricsPublic,
        ...(options.onShutdownRequest ? { onShutdown: options.onShutdownRequest } : {}),
        status: () => ({
          runtime: runtime?.name ?? 'agents',
          ...(runtime ? { limits: runtime.limitsSupport() } : {}),
          specFile: spec.file,
          control: leadership,
        }),
      });
      const running: RunningTerm = {
        control,
        api,
        close: async () => {
          if (term === running) term = undefined;
          // Each step runs even when one before it fails: a deposed leader's writes are refused
          // (UNDERSTUDY_ERR_NOT_LEADER), and its instances must still stop.
          const report = (where: string) => (err: unknown) => options.onError?.(err, where);
          await api.close().catch(report('closing the API'));
          // With agents, their instances keep running: the next leader adopts them.
          await control
            ?.close(agents ? { leaveRunning: true } : {})
            .catch(report('stopping the control plane'));
          await agents?.registry.close().catch(report('closing the agents'));
          await runtime?.close().catch(report('closing the runtime'));
          // A deposed leader serves as a standby again (not when the replica itself is closing).
          void startStandby();
        },
      };
      term = running;
      // Others see where the leader's API is (the first term starts before `replica` is assigned).
      void late.replica?.setAddress(api.endpoint.url).catch(() => undefined);
      return running;
    } catch (err) {
      await control?.close(agents ? { leaveRunning: true } : {}).catch(() => undefined);
      await agents?.registry.close().catch(() => undefined);
      await runtime?.close();
      void startStandby();
      throw err;
    }
  };
  const late: { replica?: ControlReplica } = {};
  let replica: ControlReplica;
  try {
    replica = await ControlReplica.start({
      store,
      name,
      ...(options.ttlMs !== undefined ? { ttlMs: options.ttlMs } : {}),
      startTerm,
      onEvent: (event) => options.onLeadership?.(event, name),
      ...(options.onError ? { onError: options.onError } : {}),
    });
  } catch (err) {
    await store.close();
    await release();
    throw err;
  }
  late.replica = replica;
  if (term) await replica.setAddress(term.api.endpoint.url).catch(() => undefined);
  else await startStandby();
  const refresh = async (): Promise<void> => {
    const leader = replica.leader();
    leadership = {
      store: options.store,
      ...(leader ? { leader } : {}),
      replicas: await listReplicas(store, leader),
    };
  };
  await refresh().catch(() => undefined);
  const timer = setInterval(() => void refresh().catch(() => undefined), 1000);
  timer.unref();
  let closed: Promise<void> | undefined;
  return {
    spec,
    dataDir,
    name,
    replica,
    current: () => (term ? { control: term.control, api: term.api } : undefined),
    standbyApi: () => standby?.api,
    close: () =>
      (closed ??= (async () => {
        closing = true;
        clearInterval(timer);
        await stopStandby();
        await replica.close();
        await store.close();
        await release();
      })()),
  };
}

/**
 * Writes the API token every replica of a cluster shares: HMAC-SHA256 of a fixed label under the
 * cluster key (64 hex characters, the token format), mode 0600, replacing the data directory's own.
 */
function shareApiToken(dataDir: string, secret: string): void {
  const token = createHmac('sha256', secret).update('understudy api token v1').digest('hex');
  const path = tokenPath(dataDir);
  const tmp = `${path}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, token + '\n', { mode: 0o600, flag: 'wx' });
  renameSync(tmp, path);
}
