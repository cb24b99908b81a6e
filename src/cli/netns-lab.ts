// Real hosts for tests, benchmarks and the hosts demo (`understudy demo --part hosts`): one Linux network namespace per host, each with a veth whose
// other end is a port of a bridge that lives in a namespace of its own (the "switch"), so nothing is
// created in the machine's own namespace and parallel runs cannot collide. Addresses come from a
// 10.x.y.0/24 picked at random per lab. Needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { ErrorCode, UnderstudyError } from '../errors/index.js';

/** One host of a {@link NetnsLab}. */
export interface NetnsHost {
  /** The name the test gave it. */
  readonly name: string;
  /** The network namespace it is (`us-<pid>-<lab>-<i>`). */
  readonly ns: string;
  /** Its address on the lab's bridge (10.x.y.i). */
  readonly address: string;
}

/** Options of {@link NetnsLab.create}. */
export interface NetnsLabOptions {
  /** Host names, one namespace each (1 to 200). */
  readonly hosts: readonly string[];
  /** Sweep namespaces left behind by dead processes before creating this lab. @default true */
  readonly sweep?: boolean;
}

const PREFIX = 'us-';
const NAME = /^us-(\d+)-\d+-/;
let labCounter = 0;
const liveLabs = new Set<NetnsLab>();
let exitHooked = false;

function ip(args: readonly string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr ?? '') + (r.error?.message ?? '') };
}

function mustIp(args: readonly string[]): string {
  const r = ip(args);
  if (!r.ok)
    throw new UnderstudyError(ErrorCode.RuntimeSpawn, `ip ${args.join(' ')} failed: ${r.err.trim()}`);
  return r.out;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Every process inside namespace `ns` (`ip netns pids`). */
function nsPids(ns: string): number[] {
  return ip(['netns', 'pids', ns])
    .out.split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/** SIGKILLs every process in `ns` (only ever namespaces this harness created) and deletes it. */
function removeNamespace(ns: string): void {
  for (const pid of nsPids(ns)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  ip(['netns', 'del', ns]);
}

/** The harness's namespaces that exist now (`us-<pid>-<lab>-…`). */
export function harnessNamespaces(): string[] {
  return ip(['netns', 'list'])
    .out.split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(PREFIX) && NAME.test(n));
}

/**
 * Removes the namespaces of this harness whose creating process is dead (a run that was killed
 * before its cleanup): their processes are stopped and the namespaces deleted. Returns their names.
 */
export function sweepStaleNamespaces(): string[] {
  const stale = harnessNamespaces().filter((n) => {
    const pid = Number(NAME.exec(n)?.[1]);
    return pid !== process.pid && !pidAlive(pid);
  });
  for (const ns of stale) removeNamespace(ns);
  return stale;
}

/**
 * Whether network namespaces can be made here: `{ ok: true }`, or the reason they cannot (not root,
 * no `ip` command, a kernel or sandbox that refuses). Tests skip with that reason.
 */
export function netnsSupport(): { ok: true } | { ok: false; reason: string } {
  if (spawnSync('ip', ['-V']).status !== 0)
    return { ok: false, reason: 'the ip command (iproute2) is not installed' };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'network namespaces need root' };
  const probe = `${PREFIX}${process.pid}-0-probe`;
  const r = ip(['netns', 'add', probe]);
  if (!r.ok) return { ok: false, reason: `ip netns add failed: ${r.err.trim()}` };
  const bridge = ip(['-n', probe, 'link', 'add', 'br0', 'type', 'bridge']);
  const veth = ip(['-n', probe, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'b0']);
  ip(['netns', 'del', probe]);
  if (!bridge.ok) return { ok: false, reason: `cannot create a bridge: ${bridge.err.trim()}` };
  if (!veth.ok) return { ok: false, reason: `cannot create a veth pair: ${veth.err.trim()}` };
  return { ok: true };
}

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  // Synchronous: runs on a normal exit and after an uncaught error, so a failed run leaves nothing.
  process.once('exit', () => {
    for (const lab of liveLabs) lab.closeSync();
  });
}

/**
 * A set of hosts, each a network namespace on one bridge. Create with {@link NetnsLab.create}; always
 * {@link NetnsLab.close} it (afterAll / finally) — a process `exit` hook and the stale sweeper are
 * the safety nets, not the plan.
 */
export class NetnsLab {
  readonly #hosts = new Map<string, NetnsHost & { port: string }>();
  readonly #children = new Set<ChildProcess>();
  readonly #switch: string;
  #closed = false;

  private constructor(
    readonly id: string,
    /** The lab's /24, e.g. `10.37.201.0/24`. */
    readonly subnet: string,
  ) {
    this.#switch = `${id}-sw`;
  }

  /** Creates the switch (a bridge in its own namespace) and one namespace per host, all links up. */
  static create(options: NetnsLabOptions): NetnsLab {
    if (options.hosts.length < 1 || options.hosts.length > 200)
      throw new UnderstudyError(ErrorCode.Usage, `a lab has 1 to 200 hosts, not ${options.hosts.length}`);
    if (new Set(options.hosts).size !== options.hosts.length)
      throw new UnderstudyError(ErrorCode.Usage, 'host names must differ');
    if (options.sweep ?? true) sweepStaleNamespaces();
    const x = 1 + Math.floor(Math.random() * 254);
    const y = 1 + Math.floor(Math.random() * 254);
    const lab = new NetnsLab(`${PREFIX}${process.pid}-${++labCounter}`, `10.${x}.${y}.0/24`);
    liveLabs.add(lab);
    hookExit();
    try {
      lab.#build(options.hosts, `10.${x}.${y}`);
    } catch (e) {
      lab.closeSync();
      throw e;
    }
    return lab;
  }

  #build(names: readonly string[], net: string): void {
    const sw = this.#switch;
    mustIp(['netns', 'add', sw]);
    mustIp(['-n', sw, 'link', 'set', 'lo', 'up']);
    mustIp(['-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
    mustIp(['-n', sw, 'link', 'set', 'br0', 'up']);
    names.forEach((name, i) => {
      const ns = `${this.id}-${i}`;
      const port = `p${i}`;
      const address = `${net}.${i + 1}`;
      this.#hosts.set(name, { name, ns, address, port });
      mustIp(['netns', 'add', ns]);
      mustIp(['-n', ns, 'link', 'set', 'lo', 'up']);
      // Both ends are created inside namespaces: nothing ever appears in the machine's own.
      mustIp(['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', port, 'netns', sw]);
      mustIp(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      mustIp(['-n', ns, 'link', 'set', 'eth0', 'up']);
      mustIp(['-n', sw, 'link', 'set', port, 'master', 'br0']);
      mustIp(['-n', sw, 'link', 'set', port, 'up']);
    });
  }

  /** The lab's hosts, in creation order. */
  hosts(): NetnsHost[] {
    return [...this.#hosts.values()].map(({ name, ns, address }) => ({ name, ns, address }));
  }

  /** The host named `name`. Thrown when there is none. */
  host(name: string): NetnsHost {
    const h = this.#hosts.get(name);
    if (!h) throw new UnderstudyError(ErrorCode.NotFound, `no host '${name}' in lab ${this.id}`);
    return { name: h.name, ns: h.ns, address: h.address };
  }

  /** The address of host `name`. */
  address(name: string): string {
    return this.host(name).address;
  }

  /**
   * Starts `cmd args` inside host `name`'s namespace (`ip netns exec`); the child is killed by
   * {@link close} if still running.
   */
  exec(name: string, cmd: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.host(name).ns, cmd, ...args], options);
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  /** Runs `cmd args` inside host `name` to completion; its status and output. */
  run(
    name: string,
    cmd: string,
    args: readonly string[] = [],
  ): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync('ip', ['netns', 'exec', this.host(name).ns, cmd, ...args], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  /** Cuts host `name` off the bridge (its switch port down): nothing reaches it, it reaches nothing. */
  partition(name: string): void {
    mustIp(['-n', this.#switch, 'link', 'set', this.#port(name), 'down']);
  }

  /** Puts host `name` back on the bridge. */
  heal(name: string): void {
    mustIp(['-n', this.#switch, 'link', 'set', this.#port(name), 'up']);
  }

  /** Kills every process inside host `name` (a host lost; the namespace itself stays). */
  killAll(name: string): void {
    for (const pid of nsPids(this.host(name).ns)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }

  /**
   * Delays every packet host `name` sends by `ms` (tc netem on its eth0; 0 removes it). Returns
   * false with the reason when netem is not available in this kernel (the sch_netem module).
   */
  delay(name: string, ms: number): { ok: true } | { ok: false; reason: string } {
    const ns = this.host(name).ns;
    const args =
      ms > 0
        ? ['qdisc', 'replace', 'dev', 'eth0', 'root', 'netem', 'delay', `${ms}ms`]
        : ['qdisc', 'del', 'dev', 'eth0', 'root'];
    const r = spawnSync('ip', ['netns', 'exec', ns, 'tc', ...args], { encoding: 'utf8' });
    if (r.status === 0) return { ok: true };
    return { ok: false, reason: `tc netem: ${(r.stderr || r.error?.message || 'failed').trim()}` };
  }

  #port(name: string): string {
    const h = this.#hosts.get(name);
    if (!h) throw new UnderstudyError(ErrorCode.NotFound, `no host '${name}' in lab ${this.id}`);
    return h.port;
  }

  /** Kills what runs in the lab and removes its namespaces (veths and bridge go with them). Idempotent. */
  closeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    liveLabs.delete(this);
    for (const c of this.#children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const h of this.#hosts.values()) removeNamespace(h.ns);
    removeNamespace(this.#switch);
  }

  /** {@link closeSync}, then waits for the children this lab started to have exited. */
  async close(): Promise<void> {
    const children = [...this.#children].filter((c) => c.exitCode === null && c.signalCode === null);
    const exited = children.map((c) => new Promise<void>((r) => c.once('exit', () => r())));
    this.closeSync();
    await Promise.all(exited);
  }
}
