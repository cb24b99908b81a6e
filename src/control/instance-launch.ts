import { resolve } from 'node:path';
import { expandPlaceholders, sameOrNested, type ServiceSpec } from '../config/index.js';
import type { Agent, InstanceHandle, InstanceLaunch, ResourceLimits } from '../agent/index.js';
import type { InstanceRecord, InstanceRole } from './records.js';
import { STATE_TOKEN_ENV, stateTokenFor } from './state-token.js';

/** Where an instance runs and logs: the parts of a launch that come from the control plane. */
export interface LaunchContext {
  dataDir: string;
  specDir: string;
  host: string;
  logMaxBytes: number;
}

/** The absolute state directory of an instance. */
export function stateDirOf(
  spec: ServiceSpec,
  id: string,
  role: InstanceRole,
  ports: Record<string, number>,
  ctx: LaunchContext,
): string {
  const values = {
    instance: id,
    service: spec.name,
    role,
    specDir: ctx.specDir,
    dataDir: ctx.dataDir,
    ports,
    stateDir: '',
  };
  return resolve(ctx.dataDir, expandPlaceholders(spec.stateDir, values));
}

/**
 * Serving instances get the spec's limits; echoes start at `echoFraction` of them (seed 000: echoes start
 * minimal); shadows get the shadow's CPU and memory fractions (seed 002).
 */
export function limitsFor(spec: ServiceSpec, role: InstanceRole, supported: boolean): ResourceLimits {
  if (!supported) return {};
  const echo = spec.resources.echoFraction;
  const cpuFraction = role === 'primary' ? 1 : role === 'shadow' ? spec.shadow.cpuFraction : echo;
  const memFraction = role === 'primary' ? 1 : role === 'shadow' ? spec.shadow.memoryFraction : echo;
  const limits: ResourceLimits = {};
  // A shadow is always limited (a fraction of one core when serving instances are not).
  const cpu = spec.resources.cpu ?? (role === 'shadow' ? 1 : undefined);
  if (cpu !== undefined) limits.cpu = cpu * cpuFraction;
  if (spec.resources.memory !== undefined)
    limits.memoryBytes = Math.max(32 * 1024 * 1024, Math.floor(spec.resources.memory * memFraction));
  return limits;
}

/** The runtime launch of an instance record: argv, env and cwd with placeholders expanded. */
export function buildLaunch(spec: ServiceSpec, rec: InstanceRecord, ctx: LaunchContext): InstanceLaunch {
  const values = {
    instance: rec.id,
    service: spec.name,
    role: rec.role,
    specDir: ctx.specDir,
    dataDir: ctx.dataDir,
    ports: rec.ports,
    stateDir: rec.stateDir,
  };
  return {
    instanceId: rec.id,
    service: spec.name,
    host: rec.host,
    command: spec.command.map((a) => expandPlaceholders(a, values)),
    cwd: resolve(ctx.specDir, expandPlaceholders(spec.cwd ?? '.', values)),
    env: {
      ...Object.fromEntries(Object.entries(spec.env).map(([k, v]) => [k, expandPlaceholders(v, values)])),
      UNDERSTUDY_SERVICE: spec.name,
      UNDERSTUDY_INSTANCE: rec.id,
      UNDERSTUDY_ROLE: rec.role,
      UNDERSTUDY_STATE_DIR: rec.stateDir,
      ...(spec.stateTransfer ? { [STATE_TOKEN_ENV]: stateTokenFor(rec.id) } : {}),
      ...Object.fromEntries(
        Object.entries(rec.ports).map(([n, p]) => [
          `UNDERSTUDY_PORT_${n.toUpperCase().replaceAll('-', '_')}`,
          String(p),
        ]),
      ),
    },
    stateDir: rec.stateDir,
    logDir: resolve(ctx.dataDir, 'logs'),
    logMaxBytes: ctx.logMaxBytes,
    resources: rec.limits,
  };
}

/** The next free instance id of a service: `<service>-<n>`, n one above the highest used. */
export function nextInstanceId(records: Iterable<InstanceRecord>, service: string): string {
  let max = 0;
  for (const rec of records) {
    if (rec.service !== service) continue;
    const n = Number(rec.id.slice(service.length + 1));
    if (Number.isInteger(n) && n > max) max = n;
  }
  return `${service}-${max + 1}`;
}

/**
 * Moves an instance record to the host of `agent` (its process gone): the ports and state directory a
 * new record would get there, and no process handle.
 */
export async function rehomeRecord(
  rec: InstanceRecord,
  spec: ServiceSpec,
  context: LaunchContext,
  agent: Agent,
): Promise<void> {
  const fresh = await newInstanceRecord(spec, rec.id, rec.role, rec.slot, context, agent);
  rec.host = fresh.host;
  rec.ports = fresh.ports;
  rec.stateDir = fresh.stateDir;
  delete rec.handle;
  delete rec.pid;
  delete rec.pgid;
}

/**
 * A new instance record with its ports allocated on the host of `agent` (0 in the spec: a free port
 * there) and its state directory.
 */
export async function newInstanceRecord(
  spec: ServiceSpec,
  id: string,
  role: InstanceRole,
  slot: number,
  ctx: LaunchContext,
  agent: Agent,
): Promise<InstanceRecord> {
  const limitsSupported = (await agent.limitsSupport()).supported;
  const ports: Record<string, number> = {};
  for (const [name, port] of Object.entries(spec.ports))
    ports[name] = port === 0 ? await agent.allocatePort() : port;
  return {
    id,
    service: spec.name,
    role,
    slot,
    host: agent.host,
    phase: 'starting',
    ports,
    stateDir: stateDirOf(spec, id, role, ports, ctx),
    restarts: [],
    limits: limitsFor(spec, role, limitsSupported),
    epoch: 0,
  };
}

/** Copies what the runtime says of a started process into the record (and keeps the handle for adoption). */
export function applyHandle(rec: InstanceRecord, handle: InstanceHandle): void {
  rec.pid = handle.pid;
  rec.pgid = handle.pgid;
  rec.startedAt = handle.startedAt;
  rec.stdoutPath = handle.stdoutPath;
  rec.stderrPath = handle.stderrPath;
  rec.limits = handle.limits;
  const { exit: _exit, ...live } = handle;
  rec.handle = live;
}

/**
 * Other instances (not stopped) whose state directory is the same as `rec`'s or nested with it: deleting
 * `rec`'s directory would destroy their state. Checked before any removal of a state directory (the spec
 * check refuses such layouts; this is the second line of defence, e.g. for records of an older spec).
 */
export function stateDirUsers(rec: InstanceRecord, records: Iterable<InstanceRecord>): InstanceRecord[] {
  const users: InstanceRecord[] = [];
  for (const other of records) {
    if (other.id !== rec.id && other.phase !== 'stopped' && sameOrNested(other.stateDir, rec.stateDir))
      users.push(other);
  }
  return users;
}
