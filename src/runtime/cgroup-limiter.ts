/**
 * Resource limits through Linux cgroups: v2 (unified hierarchy with `cgroup.controllers` at the root) or v1
 * (one hierarchy per controller, e.g. /sys/fs/cgroup/cpu and /sys/fs/cgroup/memory). Each instance gets its own
 * cgroup under `<own cgroup>/<parentName>/`, where `<own cgroup>` is this process's path per controller from
 * /proc/self/cgroup. Support is decided by actually creating a probe cgroup, never assumed.
 */
import { randomBytes } from 'node:crypto';
import { access, mkdir, readdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { LimitsSupport, ResourceLimits } from './runtime.js';

/** Options of {@link CgroupLimiter.detect}. */
export interface CgroupLimiterOptions {
  /** Root of the cgroup filesystem. */
  root: string;
  /** Name of the parent cgroup created under this process's own cgroup. */
  parentName: string;
}

/** The cgroup(s) of one instance. */
export interface InstanceCgroup {
  version: 1 | 2;
  /** Every directory of this instance's cgroup (one per v1 hierarchy, one on v2); the process joins all. */
  dirs: string[];
  cpuDir: string;
  memoryDir: string;
}

/** v1 writes this (PAGE_COUNTER_MAX pages) for "no limit"; anything this large is reported as unlimited. */
const UNLIMITED_THRESHOLD = 2 ** 60;
const V1_CPU_MOUNTS = ['cpu', 'cpu,cpuacct', 'cpuacct,cpu'];

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Parses /proc/<pid>/cgroup into controller → path; the v2 entry (`0::/path`) is under the key ''. */
export function parseProcCgroup(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (controllers === '') map.set('', path);
    else for (const c of controllers.split(',')) map.set(c, path);
  }
  return map;
}

function limitsError(message: string, cause?: unknown): UnderstudyError {
  return new UnderstudyError(ErrorCode.RuntimeLimits, message, cause === undefined ? {} : { cause });
}

function validate(limits: ResourceLimits): void {
  if (limits.cpu !== undefined && !(Number.isFinite(limits.cpu) && limits.cpu > 0)) {
    throw limitsError(`CPU limit ${limits.cpu} is invalid: expected a positive number of cores (e.g. 0.5).`);
  }
  if (
    limits.memoryBytes !== undefined &&
    !(Number.isSafeInteger(limits.memoryBytes) && limits.memoryBytes > 0)
  ) {
    throw limitsError(
      `Memory limit ${limits.memoryBytes} is invalid: expected a positive whole number of bytes.`,
    );
  }
}

async function writeControl(file: string, value: string): Promise<void> {
  try {
    await writeFile(file, value);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
    throw limitsError(`The kernel rejected "${value}" for ${file} (${code}).`, cause);
  }
}

async function readControl(file: string): Promise<string> {
  return (await readFile(file, 'utf8')).trim();
}

/** Creates, configures and removes per-instance cgroups. Construct with {@link CgroupLimiter.detect}. */
export class CgroupLimiter {
  private constructor(
    readonly support: LimitsSupport,
    private readonly version: 1 | 2 | undefined,
    /** Parent directory per controller ('cpu', 'memory'; on v2 both map to the same directory). */
    private readonly parents: { cpu: string; memory: string } | undefined,
  ) {}

  /** Detects the cgroup hierarchy under `options.root` and checks it is writable by creating a probe cgroup. */
  static async detect(options: CgroupLimiterOptions): Promise<CgroupLimiter> {
    let own: Map<string, string>;
    try {
      own = parseProcCgroup(await readFile('/proc/self/cgroup', 'utf8'));
    } catch (cause) {
      return CgroupLimiter.unsupported(`/proc/self/cgroup is unreadable (${(cause as Error).message})`);
    }
    try {
      if (await exists(join(options.root, 'cgroup.controllers')))
        return await CgroupLimiter.detectV2(options, own);
      return await CgroupLimiter.detectV1(options, own);
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
      return CgroupLimiter.unsupported(`cannot create cgroups under ${options.root}: ${code}`);
    }
  }

  private static unsupported(reason: string): CgroupLimiter {
    return new CgroupLimiter({ supported: false, reason }, undefined, undefined);
  }

  private static async probe(parents: string[]): Promise<void> {
    for (const parent of [...new Set(parents)]) {
      await mkdir(parent, { recursive: true });
      const probe = join(parent, `probe-${process.pid}-${randomBytes(4).toString('hex')}`);
      await mkdir(probe);
      await rmdir(probe);
      await CgroupLimiter.sweep(parent);
    }
  }

  /**
   * Removes instance cgroups left empty by an instance that exited while no control process watched it (e.g. the
   * control process crashed and its instances were never adopted). Only cgroups created more than a minute ago
   * are touched, so a cgroup another runtime just created and is about to fill is left alone; rmdir refuses a
   * cgroup that still has processes anyway.
   */
  private static async sweep(parent: string): Promise<void> {
    const cutoff = Date.now() - 60_000;
    for (const entry of await readdir(parent, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const dir = join(parent, entry.name);
      try {
        if ((await stat(dir)).mtimeMs > cutoff) continue;
        if ((await readControl(join(dir, 'cgroup.procs'))) !== '') continue;
        await rmdir(dir);
      } catch {
        // In use, or removed by someone else meanwhile.
      }
    }
  }

  private static async detectV1(
    options: CgroupLimiterOptions,
    own: Map<string, string>,
  ): Promise<CgroupLimiter> {
    const base = async (
      mounts: string[],
      controller: string,
      controlFile: string,
    ): Promise<string | undefined> => {
      for (const m of mounts) {
        const mount = join(options.root, m);
        if (!(await exists(join(mount, controlFile)))) continue;
        const nested = join(mount, own.get(controller) ?? '/');
        // Inside a container the hierarchy is often mounted at our own cgroup already: fall back to the mount.
        return (await exists(join(nested, controlFile))) ? nested : mount;
      }
      return undefined;
    };
    const cpu = await base(V1_CPU_MOUNTS, 'cpu', 'cpu.cfs_quota_us');
    const memory = await base(['memory'], 'memory', 'memory.limit_in_bytes');
    if (cpu === undefined || memory === undefined) {
      const missing = [cpu === undefined ? 'cpu' : '', memory === undefined ? 'memory' : '']
        .filter(Boolean)
        .join(' and ');
      return CgroupLimiter.unsupported(
        `no cgroup v2 hierarchy (${join(options.root, 'cgroup.controllers')}) and no cgroup v1 ${missing} controller mounted under ${options.root}`,
      );
    }
    const parents = { cpu: join(cpu, options.parentName), memory: join(memory, options.parentName) };
    await CgroupLimiter.probe([parents.cpu, parents.memory]);
    return new CgroupLimiter({ supported: true, mechanism: 'cgroup-v1' }, 1, parents);
  }

  private static async detectV2(
    options: CgroupLimiterOptions,
    own: Map<string, string>,
  ): Promise<CgroupLimiter> {
    const nested = join(options.root, own.get('') ?? '/');
    const base = (await exists(join(nested, 'cgroup.controllers'))) ? nested : options.root;
    const available = (await readControl(join(base, 'cgroup.controllers'))).split(/\s+/);
    const missing = ['cpu', 'memory'].filter((c) => !available.includes(c));
    if (missing.length > 0) {
      return CgroupLimiter.unsupported(
        `cgroup v2 controller(s) ${missing.join(', ')} not available in ${base} (not delegated)`,
      );
    }
    const parent = join(base, options.parentName);
    const enable = async (dir: string): Promise<void> => {
      const enabled = (await readControl(join(dir, 'cgroup.subtree_control'))).split(/\s+/);
      if (enabled.includes('cpu') && enabled.includes('memory')) return;
      await writeFile(join(dir, 'cgroup.subtree_control'), '+cpu +memory');
    };
    try {
      await enable(base);
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code ?? '';
      return CgroupLimiter.unsupported(
        `cannot enable the cpu and memory controllers for children of ${base} (${code}); ` +
          (code === 'EBUSY'
            ? 'this cgroup holds processes, so run Understudy in a delegated cgroup (e.g. systemd-run --user -p Delegate=yes --scope)'
            : 'the hierarchy is not writable by this user'),
      );
    }
    await mkdir(parent, { recursive: true });
    await enable(parent);
    await CgroupLimiter.probe([parent]);
    return new CgroupLimiter({ supported: true, mechanism: 'cgroup-v2' }, 2, { cpu: parent, memory: parent });
  }

  private requireSupported(): { version: 1 | 2; parents: { cpu: string; memory: string } } {
    if (this.version === undefined || this.parents === undefined) {
      const reason = this.support.supported ? 'unknown' : this.support.reason;
      throw limitsError(`Resource limits are unsupported on this host: ${reason}.`);
    }
    return { version: this.version, parents: this.parents };
  }

  /** Creates a fresh cgroup for one instance (the name carries a random suffix, so instance ids may repeat). */
  async create(instanceId: string): Promise<InstanceCgroup> {
    const { version, parents } = this.requireSupported();
    const name = `${instanceId.replace(/[^A-Za-z0-9_.-]/g, '_')}.${randomBytes(4).toString('hex')}`;
    const cpuDir = join(parents.cpu, name);
    const memoryDir = join(parents.memory, name);
    const dirs = [...new Set([cpuDir, memoryDir])];
    try {
      for (const d of dirs) await mkdir(d);
    } catch (cause) {
      await Promise.all(dirs.map((d) => rmdir(d).catch(() => undefined)));
      throw limitsError(`Could not create the cgroup of instance ${instanceId} under ${parents.cpu}.`, cause);
    }
    return { version, dirs, cpuDir, memoryDir };
  }

  /** The `cgroup.procs` files a process writes its pid to, to join the instance's cgroup(s). */
  procsFiles(cg: InstanceCgroup): string[] {
    return cg.dirs.map((d) => join(d, 'cgroup.procs'));
  }

  /** Moves `pid` into the instance's cgroup(s). Writing a pid that is already a member is a no-op. */
  async join(cg: InstanceCgroup, pid: number): Promise<void> {
    for (const file of this.procsFiles(cg)) await writeControl(file, String(pid));
  }

  /**
   * Applies `limits` (replacing earlier ones; an omitted field means unlimited) and returns the limits as read
   * back from the kernel (memory is rounded down to whole pages by the kernel).
   */
  async apply(cg: InstanceCgroup, limits: ResourceLimits): Promise<ResourceLimits> {
    validate(limits);
    if (cg.version === 1) {
      const period = Number(await readControl(join(cg.cpuDir, 'cpu.cfs_period_us')));
      const quota = limits.cpu === undefined ? -1 : Math.max(1000, Math.round(limits.cpu * period));
      await writeControl(join(cg.cpuDir, 'cpu.cfs_quota_us'), String(quota));
      await writeControl(
        join(cg.memoryDir, 'memory.limit_in_bytes'),
        limits.memoryBytes === undefined ? '-1' : String(limits.memoryBytes),
      );
    } else {
      const [, periodText] = (await readControl(join(cg.cpuDir, 'cpu.max'))).split(' ');
      const period = Number(periodText ?? 100_000);
      const quota =
        limits.cpu === undefined ? 'max' : String(Math.max(1000, Math.round(limits.cpu * period)));
      await writeControl(join(cg.cpuDir, 'cpu.max'), `${quota} ${period}`);
      await writeControl(
        join(cg.memoryDir, 'memory.max'),
        limits.memoryBytes === undefined ? 'max' : String(limits.memoryBytes),
      );
    }
    return this.read(cg);
  }

  /** Reads the limits currently enforced on the instance's cgroup. */
  async read(cg: InstanceCgroup): Promise<ResourceLimits> {
    const result: ResourceLimits = {};
    let quota: number;
    let period: number;
    let memory: string;
    if (cg.version === 1) {
      quota = Number(await readControl(join(cg.cpuDir, 'cpu.cfs_quota_us')));
      period = Number(await readControl(join(cg.cpuDir, 'cpu.cfs_period_us')));
      memory = await readControl(join(cg.memoryDir, 'memory.limit_in_bytes'));
    } else {
      const [q, p] = (await readControl(join(cg.cpuDir, 'cpu.max'))).split(' ');
      quota = q === 'max' ? -1 : Number(q);
      period = Number(p);
      memory = await readControl(join(cg.memoryDir, 'memory.max'));
    }
    if (quota > 0 && period > 0) result.cpu = quota / period;
    const mem = memory === 'max' ? Infinity : Number(memory);
    if (Number.isFinite(mem) && mem < UNLIMITED_THRESHOLD) result.memoryBytes = mem;
    return result;
  }

  /** Pids currently in the instance's cgroup. */
  async members(cg: InstanceCgroup): Promise<number[]> {
    const pids = new Set<number>();
    for (const file of this.procsFiles(cg)) {
      try {
        for (const line of (await readFile(file, 'utf8')).split('\n'))
          if (line.trim() !== '') pids.add(Number(line));
      } catch {
        // The cgroup is already gone.
      }
    }
    return [...pids];
  }

  /**
   * SIGKILLs whatever is left in the cgroup (also processes that left the instance's process group with setsid)
   * and removes the cgroup directories, retrying while the kernel still reports them busy.
   * Returns false when they could not be removed within ~2 s.
   */
  async remove(cg: InstanceCgroup): Promise<boolean> {
    for (let attempt = 0; attempt < 40; attempt++) {
      for (const pid of await this.members(cg)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      let busy = false;
      for (const d of cg.dirs) {
        try {
          await rmdir(d);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') busy = true;
        }
      }
      if (!busy) return true;
      await sleep(50);
    }
    return false;
  }

  /** Finds the instance cgroup (created by any runtime using the same parent) that `pid` is in, for adoption. */
  async find(pid: number): Promise<InstanceCgroup | undefined> {
    if (this.version === undefined || this.parents === undefined) return undefined;
    let map: Map<string, string>;
    try {
      map = parseProcCgroup(await readFile(`/proc/${pid}/cgroup`, 'utf8'));
    } catch {
      return undefined;
    }
    const locate = (parent: string, controller: string): string | undefined => {
      const path = map.get(this.version === 2 ? '' : controller);
      if (path === undefined) return undefined;
      // The parent dir ends with `<own path>/<parentName>`; the member's path must be one level below it.
      const name = path.split('/').pop() ?? '';
      const parentPath = path.slice(0, path.length - name.length - 1);
      return name !== '' && parentPath !== '' && parent.endsWith(parentPath) ? join(parent, name) : undefined;
    };
    const cpuDir = locate(this.parents.cpu, 'cpu');
    const memoryDir = locate(this.parents.memory, 'memory');
    if (cpuDir === undefined || memoryDir === undefined) return undefined;
    if (!(await exists(cpuDir)) || !(await exists(memoryDir))) return undefined;
    return { version: this.version, dirs: [...new Set([cpuDir, memoryDir])], cpuDir, memoryDir };
  }
}
