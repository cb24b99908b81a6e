import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { CgroupLimiter, type InstanceCgroup } from './cgroup-limiter.js';
import { assertCwd, ensureWritableDir, resolveCommand } from './launch-checks.js';
import { openLogForAppend, SerialRotations } from './log-files.js';
import {
  cpuPercentSince,
  listGroupProcesses,
  readLiveStats,
  readProcStat,
  readProcStatSync,
  sampleProcesses,
  GroupScan,
} from './proc-stats.js';
import type {
  CloseOptions,
  InstanceExit,
  InstanceHandle,
  InstanceLaunch,
  InstanceStats,
  LimitsSupport,
  ResourceLimits,
  Runtime,
  StopOptions,
} from './runtime.js';

/** Options of {@link ProcessRuntime.create}. */
export interface ProcessRuntimeOptions {
  /**
   * Root of the cgroup filesystem. Point it at a directory without cgroups to run with limits unsupported.
   * @default '/sys/fs/cgroup'
   */
  cgroupRoot?: string;
  /** Name of the parent cgroup created under this process's own cgroup. @default 'understudy' */
  cgroupParent?: string;
  /** Grace period between SIGTERM and SIGKILL when `stop()`/`close()` are not given one. @default 5000 */
  graceMs?: number;
  /** How often log files are checked against their size bound and rotated. @default 500 */
  logCheckIntervalMs?: number;
  /** How often an adopted process (not our child, so no exit event) is checked for exit. @default 100 */
  adoptPollMs?: number;
}

type ResolvedOptions = Required<ProcessRuntimeOptions>;

/** Log bound for an adopted handle that did not record one: 10 MiB. */
const FALLBACK_LOG_MAX_BYTES = 10 * 1024 * 1024;

/**
 * Joins the cgroups named by the first arguments, then execs the command, so the instance is inside its
 * cgroup before it runs any of its own code (no window in which it could fork outside the limits).
 * Exit code 125 means joining failed; the runtime also joins the pid itself right after spawn and fails start().
 */
const JOIN_SCRIPT =
  'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"';

interface Entry {
  handle: InstanceHandle;
  logMaxBytes: number;
  child: ChildProcess | undefined;
  cgroup: InstanceCgroup | undefined;
  exited: Promise<InstanceExit>;
  markExited: (exit: InstanceExit) => void;
  cleanup: Promise<void> | undefined;
  stopping: Promise<InstanceExit> | undefined;
  poll: NodeJS.Timeout | undefined;
  cpuPrev: { ticks: number; at: number } | undefined;
  logDroppedBytes: number;
}

function copyHandle(handle: InstanceHandle): InstanceHandle {
  return {
    ...handle,
    limits: { ...handle.limits },
    ...(handle.exit === undefined ? {} : { exit: { ...handle.exit } }),
  };
}

function spawnError(instanceId: string, message: string, cause?: unknown): UnderstudyError {
  return new UnderstudyError(ErrorCode.RuntimeSpawn, message, {
    ...(cause === undefined ? {} : { cause }),
    details: { instanceId },
  });
}

/**
 * The `process` runtime driver: every instance is a local OS process in its own process group (and, where the
 * host allows, its own cgroup), writing stdout/stderr straight into size-bounded log files.
 *
 * Exit of an instance it spawned is reported from the child's exit event; an adopted instance (started by an
 * earlier control process, so not our child) is polled every `adoptPollMs` — Node 20 has no pidfd API.
 * When a group leader exits, whatever is left of its process group (and cgroup) is SIGKILLed: an instance is
 * its whole group, and nothing of it outlives it.
 */
export class ProcessRuntime implements Runtime {
  readonly name = 'process';
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<(handle: InstanceHandle, exit: InstanceExit) => void>();
  private readonly logTimer: NodeJS.Timeout;
  private rotating = false;
  private readonly rotations = new SerialRotations();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** One /proc scan shared by the stats() calls of a sampling round (a scan costs ~10 ms of async reads). */
  /** One /proc scan shared by the stats calls of the next 100 ms. */
  private readonly scan = new GroupScan(100);
  private closing: Promise<void> | undefined;
  private detached = false;

  private constructor(
    private readonly options: ResolvedOptions,
    private readonly limiter: CgroupLimiter,
  ) {
    this.logTimer = setInterval(() => void this.rotateAll(), options.logCheckIntervalMs);
    this.logTimer.unref();
  }

  /** Detects cgroup support (by creating a probe cgroup) and returns a ready runtime. */
  static async create(options: ProcessRuntimeOptions = {}): Promise<ProcessRuntime> {
    const resolved: ResolvedOptions = {
      cgroupRoot: options.cgroupRoot ?? '/sys/fs/cgroup',
      cgroupParent: options.cgroupParent ?? 'understudy',
      graceMs: options.graceMs ?? 5000,
      logCheckIntervalMs: options.logCheckIntervalMs ?? 500,
      adoptPollMs: options.adoptPollMs ?? 100,
    };
    const limiter = await CgroupLimiter.detect({
      root: resolved.cgroupRoot,
      parentName: resolved.cgroupParent,
    });
    return new ProcessRuntime(resolved, limiter);
  }

  limitsSupport(): LimitsSupport {
    return this.limiter.support;
  }

  get(instanceId: string): InstanceHandle | undefined {
    const entry = this.entries.get(instanceId);
    return entry === undefined ? undefined : copyHandle(entry.handle);
  }

  /** Every instance this runtime knows: running ones, and exited ones until their id is started again. */
  list(): InstanceHandle[] {
    return [...this.entries.values()].map((e) => copyHandle(e.handle));
  }

  onExit(listener: (handle: InstanceHandle, exit: InstanceExit) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(launch: InstanceLaunch): Promise<InstanceHandle> {
    return this.track(this.startNow(launch));
  }

  /** Lets close() wait for starts and adoptions in flight, so none of them leaves a process behind. */
  private track<T>(operation: Promise<T>): Promise<T> {
    this.inFlight.add(operation);
    const forget = (): void => {
      this.inFlight.delete(operation);
    };
    operation.then(forget, forget);
    return operation;
  }

  private async startNow(launch: InstanceLaunch): Promise<InstanceHandle> {
    const id = launch.instanceId;
    if (this.closing !== undefined)
      throw spawnError(id, `Cannot start instance ${id}: the process runtime is closed.`);
    const existing = this.entries.get(id);
    if (existing !== undefined && existing.handle.exit === undefined) {
      throw spawnError(
        id,
        `Cannot start instance ${id}: it is already running as pid ${existing.handle.pid}.`,
      );
    }
    const [command, ...args] = launch.command;
    if (command === undefined) throw spawnError(id, `Cannot start instance ${id}: its command is empty.`);
    if (!(Number.isSafeInteger(launch.logMaxBytes) && launch.logMaxBytes > 0)) {
      throw spawnError(
        id,
        `Cannot start instance ${id}: logMaxBytes ${launch.logMaxBytes} is not a positive whole number of bytes.`,
      );
    }
    await assertCwd(id, command, launch.cwd);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    Object.assign(env, launch.env);
    const file = await resolveCommand(id, command, launch.cwd, env.PATH);
    await ensureWritableDir(id, launch.stateDir);

    const stdoutPath = join(launch.logDir, `${id}.out.log`);
    const stderrPath = join(launch.logDir, `${id}.err.log`);
    let logs: Array<{ fd: number; close: () => Promise<void> }>;
    try {
      await Promise.all([
        this.rotations.rotate(stdoutPath, launch.logMaxBytes),
        this.rotations.rotate(stderrPath, launch.logMaxBytes),
      ]);
      logs = [await openLogForAppend(stdoutPath), await openLogForAppend(stderrPath)];
    } catch (cause) {
      throw spawnError(
        id,
        `Cannot start instance ${id}: its log files in ${launch.logDir} cannot be opened (${(cause as Error).message}).`,
        cause,
      );
    }
    const closeLogs = (): Promise<unknown> => Promise.all(logs.map((l) => l.close().catch(() => undefined)));

    let cgroup: InstanceCgroup | undefined;
    let limits: ResourceLimits = {};
    if (this.limiter.support.supported) {
      try {
        cgroup = await this.limiter.create(id);
        limits = await this.limiter.apply(cgroup, launch.resources ?? {});
      } catch (err) {
        if (cgroup !== undefined) await this.limiter.remove(cgroup);
        await closeLogs();
        throw err;
      }
    }

    let child: ChildProcess;
    try {
      const io: ['ignore', number, number] = [
        'ignore',
        (logs[0] as { fd: number }).fd,
        (logs[1] as { fd: number }).fd,
      ];
      child =
        cgroup === undefined
          ? spawn(file, args, { cwd: launch.cwd, env, detached: true, stdio: io, argv0: command })
          : spawn(
              '/bin/sh',
              [
                '-c',
                JOIN_SCRIPT,
                'understudy-join',
                String(cgroup.dirs.length),
                ...this.limiter.procsFiles(cgroup),
                file,
                ...args,
              ],
              {
                cwd: launch.cwd,
                env,
                detached: true,
                stdio: io,
              },
            );
    } catch (cause) {
      await closeLogs();
      if (cgroup !== undefined) await this.limiter.remove(cgroup);
      throw spawnError(
        id,
        `Cannot start instance ${id}: spawning "${command}" failed (${(cause as Error).message}).`,
        cause,
      );
    }
    // The pid cannot be reaped before our event loop runs again, so this stat is of our child, not a recycled pid.
    const stat = child.pid === undefined ? undefined : readProcStatSync(child.pid);
    let onExit: (code: number | null, signal: NodeJS.Signals | null) => void = () => undefined;
    child.once('exit', (code, signal) => onExit(code, signal));
    try {
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
    } catch (cause) {
      if (cgroup !== undefined) await this.limiter.remove(cgroup);
      const code = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
      throw spawnError(
        id,
        `Cannot start instance ${id}: the command "${command}" could not be executed in ${launch.cwd} (${code}).`,
        cause,
      );
    } finally {
      await closeLogs();
    }
    // Later 'error' events (e.g. a failed kill) must not crash the control process.
    child.on('error', () => undefined);
    const pid = child.pid as number;

    const entry = this.newEntry(
      {
        instanceId: id,
        service: launch.service,
        host: launch.host,
        pid,
        pgid: pid,
        startedAt: Date.now(),
        stdoutPath,
        stderrPath,
        limits,
        ...(stat === undefined ? {} : { startTimeTicks: stat.startTimeTicks }),
        stateDir: launch.stateDir,
        logMaxBytes: launch.logMaxBytes,
      },
      child,
      cgroup,
    );
    onExit = (code, signal) => {
      if (!this.detached) this.finish(entry, { code, signal, at: Date.now() });
    };
    if (child.exitCode !== null || child.signalCode !== null) onExit(child.exitCode, child.signalCode);

    if (cgroup !== undefined && entry.handle.exit === undefined) {
      // Belt and braces for the wrapper: make start() fail loudly if the pid cannot be put into its cgroup.
      try {
        await this.limiter.join(cgroup, pid);
      } catch (err) {
        const alive = (await readProcStat(pid))?.state;
        if (alive !== undefined && alive !== 'Z') {
          this.killGroup(entry, 'SIGKILL');
          await entry.exited;
          await entry.cleanup;
          throw err;
        }
      }
    }
    return copyHandle(entry.handle);
  }

  private newEntry(
    handle: InstanceHandle,
    child: ChildProcess | undefined,
    cgroup: InstanceCgroup | undefined,
  ): Entry {
    let markExited: (exit: InstanceExit) => void = () => undefined;
    const exited = new Promise<InstanceExit>((resolve) => (markExited = resolve));
    const entry: Entry = {
      handle,
      logMaxBytes: handle.logMaxBytes ?? FALLBACK_LOG_MAX_BYTES,
      child,
      cgroup,
      exited,
      markExited,
      cleanup: undefined,
      stopping: undefined,
      poll: undefined,
      cpuPrev: undefined,
      logDroppedBytes: 0,
    };
    this.entries.set(handle.instanceId, entry);
    return entry;
  }

  /** Records the exit, kills what is left of the group, and tells the listeners — synchronously. */
  private finish(entry: Entry, exit: InstanceExit): void {
    if (entry.handle.exit !== undefined) return;
    entry.handle.exit = exit;
    if (entry.poll !== undefined) clearInterval(entry.poll);
    entry.poll = undefined;
    this.killGroup(entry, 'SIGKILL');
    entry.cleanup = this.cleanupAfterExit(entry);
    entry.markExited(exit);
    const snapshot = copyHandle(entry.handle);
    for (const listener of [...this.listeners]) {
      try {
        listener(copyHandle(snapshot), { ...exit });
      } catch (err) {
        process.emitWarning(`an onExit listener of the process runtime threw: ${(err as Error).message}`);
      }
    }
  }

  /** Waits until no live process of the group is left, removes the cgroup, and does a last log rotation. */
  private async cleanupAfterExit(entry: Entry): Promise<void> {
    if (entry.cgroup !== undefined) {
      // Every process of the instance inherited its cgroup: removal SIGKILLs the members and succeeds only once
      // the cgroup is empty, which proves nothing is left (also of processes that left the group with setsid).
      if (!(await this.limiter.remove(entry.cgroup))) {
        process.emitWarning(
          `instance ${entry.handle.instanceId}: its cgroup could not be emptied and removed`,
        );
      }
    } else {
      const deadline = Date.now() + 2000;
      // kill(-pgid, 0) fails when not even a zombie is left in the group: the cheap common case.
      while (
        this.killGroup(entry, 0) &&
        (await listGroupProcesses(entry.handle.pgid)).length > 0 &&
        Date.now() < deadline
      ) {
        this.killGroup(entry, 'SIGKILL');
        await sleep(20);
      }
    }
    await this.rotateLogs(entry);
  }

  private killGroup(entry: Entry, signal: NodeJS.Signals | 0): boolean {
    // The kernel never hands out a pid that is still some group's pgid, so if pid == pgid now names a *different*
    // process, our group is empty and the number was recycled: signalling it would hit a stranger's group.
    const leader = readProcStatSync(entry.handle.pgid);
    if (
      leader !== undefined &&
      entry.handle.startTimeTicks !== undefined &&
      leader.startTimeTicks !== entry.handle.startTimeTicks
    ) {
      return false;
    }
    try {
      process.kill(-entry.handle.pgid, signal);
      return true;
    } catch {
      return false; // ESRCH: nothing left in the group.
    }
  }

  private require(instanceId: string): Entry {
    const entry = this.entries.get(instanceId);
    if (entry === undefined) {
      throw new UnderstudyError(
        ErrorCode.RuntimeUnknownInstance,
        `The process runtime knows no instance ${instanceId}.`,
        {
          details: { instanceId },
        },
      );
    }
    return entry;
  }

  async stop(instanceId: string, options: StopOptions = {}): Promise<InstanceExit> {
    const entry = this.require(instanceId);
    if (entry.handle.exit !== undefined) {
      await entry.cleanup;
      return { ...entry.handle.exit };
    }
    entry.stopping ??= (async () => {
      const graceMs = options.graceMs ?? this.options.graceMs;
      this.killGroup(entry, 'SIGTERM');
      const escalate = setTimeout(() => this.killGroup(entry, 'SIGKILL'), graceMs);
      try {
        const exit = await entry.exited;
        await entry.cleanup;
        return { ...exit };
      } finally {
        clearTimeout(escalate);
      }
    })();
    return entry.stopping;
  }

  signal(instanceId: string, signal: NodeJS.Signals): void {
    const entry = this.require(instanceId);
    if (entry.handle.exit === undefined) this.killGroup(entry, signal);
  }

  async setResources(instanceId: string, limits: ResourceLimits): Promise<void> {
    const support = this.limiter.support;
    if (!support.supported) {
      throw new UnderstudyError(
        ErrorCode.RuntimeLimits,
        `Cannot set resource limits of instance ${instanceId}: limits unsupported (${support.reason}).`,
        {
          details: { instanceId },
        },
      );
    }
    const entry = this.require(instanceId);
    if (entry.handle.exit !== undefined || entry.cgroup === undefined) {
      const why =
        entry.handle.exit !== undefined
          ? 'it has exited'
          : 'it is not in a cgroup of this runtime (it was started without limits support)';
      throw new UnderstudyError(
        ErrorCode.RuntimeLimits,
        `Cannot set resource limits of instance ${instanceId}: ${why}.`,
        { details: { instanceId } },
      );
    }
    entry.handle.limits = await this.limiter.apply(entry.cgroup, limits);
  }

  /** Limits as the kernel enforces them now, read back from the instance's cgroup; undefined when it has none. */
  async readLimits(instanceId: string): Promise<ResourceLimits | undefined> {
    const entry = this.require(instanceId);
    return entry.cgroup === undefined || entry.handle.exit !== undefined
      ? undefined
      : this.limiter.read(entry.cgroup);
  }

  async stats(instanceId: string): Promise<InstanceStats | undefined> {
    const entry = this.entries.get(instanceId);
    if (entry === undefined || entry.handle.exit !== undefined) return undefined;
    // Members: the instance's cgroup when it has one (exact, one file, and it includes processes that left the
    // process group with setsid); otherwise its process group, from a /proc scan shared by concurrent calls.
    const members =
      entry.cgroup !== undefined
        ? await readLiveStats(await this.limiter.members(entry.cgroup))
        : ((await this.scan.groups()).get(entry.handle.pgid) ?? []);
    if (members.length === 0) return undefined;
    const sample = await sampleProcesses(members, entry.handle.pid);
    const now = performance.now();
    const cpuPercent = await cpuPercentSince(entry.cpuPrev, sample, entry.handle.startTimeTicks, now);
    entry.cpuPrev = { ticks: sample.cpuTicks, at: now };
    return {
      cpuPercent,
      rssBytes: sample.rssBytes,
      readBytes: sample.readBytes,
      writeBytes: sample.writeBytes,
      at: Date.now(),
      ioAvailable: sample.ioAvailable,
      processCount: sample.processCount,
      logDroppedBytes: entry.logDroppedBytes,
    };
  }

  adopt(handle: Omit<InstanceHandle, 'exit'>): Promise<boolean> {
    return this.track(this.adoptNow(handle));
  }

  private async adoptNow(handle: Omit<InstanceHandle, 'exit'>): Promise<boolean> {
    if (this.closing !== undefined) return false;
    const existing = this.entries.get(handle.instanceId);
    if (existing !== undefined && existing.handle.exit === undefined) {
      return existing.handle.pid === handle.pid && existing.handle.startTimeTicks === handle.startTimeTicks;
    }
    if (handle.startTimeTicks === undefined) return false;
    const stat = await readProcStat(handle.pid);
    if (
      stat === undefined ||
      stat.state === 'Z' ||
      stat.pgrp !== handle.pgid ||
      stat.startTimeTicks !== handle.startTimeTicks
    )
      return false;
    const cgroup = this.limiter.support.supported ? await this.limiter.find(handle.pid) : undefined;
    const limits = cgroup === undefined ? {} : await this.limiter.read(cgroup);
    const copy: InstanceHandle = { ...handle, limits };
    delete copy.exit;
    const entry = this.newEntry(copy, undefined, cgroup);
    let checking = false;
    entry.poll = setInterval(() => {
      if (checking) return;
      checking = true;
      void readProcStat(handle.pid).then((now) => {
        checking = false;
        if (now === undefined || now.state === 'Z' || now.startTimeTicks !== handle.startTimeTicks) {
          // Not our child: its exit status went to its parent (or init), so it is unknown here.
          this.finish(entry, { code: null, signal: null, at: Date.now() });
        }
      });
    }, this.options.adoptPollMs);
    entry.poll.unref();
    return true;
  }

  private async rotateLogs(entry: Entry): Promise<void> {
    for (const path of [entry.handle.stdoutPath, entry.handle.stderrPath]) {
      try {
        entry.logDroppedBytes += await this.rotations.rotate(path, entry.logMaxBytes);
      } catch (err) {
        process.emitWarning(`could not rotate log ${path}: ${(err as Error).message}`);
      }
    }
  }

  private async rotateAll(): Promise<void> {
    if (this.rotating) return;
    this.rotating = true;
    try {
      for (const entry of this.entries.values())
        if (entry.handle.exit === undefined) await this.rotateLogs(entry);
    } finally {
      this.rotating = false;
    }
  }

  async close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.inFlight]);
      clearInterval(this.logTimer);
      const live = [...this.entries.values()].filter((e) => e.handle.exit === undefined);
      if (options.leaveRunning === true) {
        this.detached = true;
        for (const entry of live) {
          if (entry.poll !== undefined) clearInterval(entry.poll);
          entry.poll = undefined;
          entry.child?.unref();
          await this.rotateLogs(entry);
        }
      } else {
        const graceMs = options.graceMs ?? this.options.graceMs;
        await Promise.all(live.map((e) => this.stop(e.handle.instanceId, { graceMs })));
      }
      await Promise.all([...this.entries.values()].map((e) => e.cleanup));
    })();
    return this.closing;
  }
}
