import { resolve } from 'node:path';
import { expandPlaceholders, type ServiceSpec } from '../config/index.js';
import type { InstanceLaunch, ResourceLimits } from '../runtime/index.js';
import type { InstanceRecord, InstanceRole } from './records.js';

/** Where an instance runs and logs: the parts of a launch that come from the control plane. */
export interface LaunchContext {
  dataDir: string;
  specDir: string;
  host: string;
  logMaxBytes: number;
}

/** The absolute state directory of an instance. */
export function stateDirOf(spec: ServiceSpec, id: string, role: InstanceRole, ports: Record<string, number>, ctx: LaunchContext): string {
  const values = { instance: id, service: spec.name, role, specDir: ctx.specDir, dataDir: ctx.dataDir, ports, stateDir: '' };
  return resolve(ctx.dataDir, expandPlaceholders(spec.stateDir, values));
}

/** Serving instances get the spec's limits; echoes start at `echoFraction` of them (seed 000: echoes start minimal). */
export function limitsFor(spec: ServiceSpec, role: InstanceRole, supported: boolean): ResourceLimits {
  if (!supported) return {};
  const fraction = role === 'primary' ? 1 : spec.resources.echoFraction;
  const limits: ResourceLimits = {};
  if (spec.resources.cpu !== undefined) limits.cpu = spec.resources.cpu * fraction;
  if (spec.resources.memory !== undefined) limits.memoryBytes = Math.max(32 * 1024 * 1024, Math.floor(spec.resources.memory * fraction));
  return limits;
}

/** The runtime launch of an instance record: argv, env and cwd with placeholders expanded. */
export function buildLaunch(spec: ServiceSpec, rec: InstanceRecord, ctx: LaunchContext): InstanceLaunch {
  const values = { instance: rec.id, service: spec.name, role: rec.role, specDir: ctx.specDir, dataDir: ctx.dataDir, ports: rec.ports, stateDir: rec.stateDir };
  return {
    instanceId: rec.id,
    service: spec.name,
    host: ctx.host,
    command: spec.command.map((a) => expandPlaceholders(a, values)),
    cwd: resolve(ctx.specDir, expandPlaceholders(spec.cwd ?? '.', values)),
    env: {
      ...Object.fromEntries(Object.entries(spec.env).map(([k, v]) => [k, expandPlaceholders(v, values)])),
      UNDERSTUDY_SERVICE: spec.name,
      UNDERSTUDY_INSTANCE: rec.id,
      UNDERSTUDY_ROLE: rec.role,
      UNDERSTUDY_STATE_DIR: rec.stateDir,
      ...Object.fromEntries(Object.entries(rec.ports).map(([n, p]) => [`UNDERSTUDY_PORT_${n.toUpperCase().replaceAll('-', '_')}`, String(p)])),
    },
    stateDir: rec.stateDir,
    logDir: resolve(ctx.dataDir, 'logs'),
    logMaxBytes: ctx.logMaxBytes,
    resources: rec.limits,
  };
}
