import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';

/** The fields of /proc/<pid>/stat the runtime uses. */
export interface ProcStat {
  pid: number;
  comm: string;
  /** One letter: R, S, D, Z (zombie), T, … */
  state: string;
  ppid: number;
  pgrp: number;
  /** CPU time of the process itself, in clock ticks. */
  utime: number;
  stime: number;
  /** CPU time of its waited-for (reaped) children, in clock ticks. */
  cutime: number;
  cstime: number;
  /** Start time in clock ticks since boot (field 22). Stable for the life of the process, changes when the pid is reused. */
  startTimeTicks: number;
}

/** Parses the text of /proc/<pid>/stat. Returns undefined when it is not in the expected shape. */
export function parseProcStat(text: string): ProcStat | undefined {
  // comm (field 2) is in parentheses and may itself contain spaces and ')': split at the last ')'.
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const rest = text
    .slice(close + 2)
    .trim()
    .split(' ');
  // rest[0] is field 3 (state), so field n is rest[n - 3].
  const field = (n: number): number => Number(rest[n - 3]);
  const stat: ProcStat = {
    pid,
    comm: text.slice(open + 1, close),
    state: rest[0] ?? '?',
    ppid: field(4),
    pgrp: field(5),
    utime: field(14),
    stime: field(15),
    cutime: field(16),
    cstime: field(17),
    startTimeTicks: field(22),
  };
  return Number.isFinite(stat.pid) && Number.isFinite(stat.startTimeTicks) ? stat : undefined;
}

/** Reads /proc/<pid>/stat; undefined when the process does not exist (any more). */
export async function readProcStat(pid: number): Promise<ProcStat | undefined> {
  try {
    return parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Synchronous {@link readProcStat}, for the moment right after spawn when the pid is known to be ours. */
export function readProcStatSync(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Every live (non-zombie) process on the host, from one scan of /proc (async reads: the event loop stays free). */
export async function scanProcesses(): Promise<ProcStat[]> {
  let names: string[];
  try {
    names = await readdir('/proc');
  } catch {
    return [];
  }
  return readLiveStats(names.filter((n) => /^\d+$/.test(n)).map(Number));
}

/** /proc/<pid>/stat of each pid that still exists and is not a zombie. */
export async function readLiveStats(pids: readonly number[]): Promise<ProcStat[]> {
  const stats = await Promise.all(pids.map((pid) => readProcStat(pid)));
  return stats.filter((s): s is ProcStat => s !== undefined && s.state !== 'Z');
}

/** Every process whose process group is `pgid`, excluding zombies (exited, not yet reaped), from a scan of /proc. */
export async function listGroupProcesses(pgid: number): Promise<ProcStat[]> {
  return (await scanProcesses()).filter((s) => s.pgrp === pgid);
}

let cachedClockTicks: number | undefined;

/** Clock ticks per second (`getconf CLK_TCK`; 100 on every mainstream Linux when getconf is missing). */
export function clockTicksPerSecond(): number {
  if (cachedClockTicks === undefined) {
    try {
      const out = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).trim());
      cachedClockTicks = Number.isFinite(out) && out > 0 ? out : 100;
    } catch {
      cachedClockTicks = 100;
    }
  }
  return cachedClockTicks;
}

/** Seconds since boot, from /proc/uptime. */
export async function readUptimeSeconds(): Promise<number> {
  const text = await readFile('/proc/uptime', 'utf8');
  return Number(text.split(' ')[0]);
}

async function readRssBytes(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match?.[1] === undefined ? 0 : Number(match[1]) * 1024;
  } catch {
    return 0;
  }
}

async function readIo(pid: number): Promise<{ read: number; write: number } | undefined> {
  try {
    const io = await readFile(`/proc/${pid}/io`, 'utf8');
    const read = /^read_bytes:\s+(\d+)/m.exec(io)?.[1];
    const write = /^write_bytes:\s+(\d+)/m.exec(io)?.[1];
    if (read === undefined || write === undefined) return undefined;
    return { read: Number(read), write: Number(write) };
  } catch {
    return undefined;
  }
}

/** One raw sample of a process group. */
export interface GroupSample {
  /** utime+stime+cutime+cstime summed over the live processes of the group, in clock ticks. */
  cpuTicks: number;
  rssBytes: number;
  readBytes: number;
  writeBytes: number;
  ioAvailable: boolean;
  processCount: number;
  /** Start time (ticks since boot) of the group leader, when it is alive. */
  leaderStartTicks: number | undefined;
}

/**
 * Samples the given live processes of one instance; `leaderPid` is the instance's main process. Children reaped
 * by a member move their CPU time into the member's cutime/cstime, so the sum stays continuous when short-lived
 * helpers exit.
 */
export async function sampleProcesses(members: readonly ProcStat[], leaderPid: number): Promise<GroupSample> {
  const details = await Promise.all(
    members.map(async (m) => ({ rss: await readRssBytes(m.pid), io: await readIo(m.pid) })),
  );
  const sample: GroupSample = {
    cpuTicks: 0,
    rssBytes: 0,
    readBytes: 0,
    writeBytes: 0,
    ioAvailable: true,
    processCount: members.length,
    leaderStartTicks: members.find((m) => m.pid === leaderPid)?.startTimeTicks,
  };
  members.forEach((m, i) => {
    sample.cpuTicks += m.utime + m.stime + m.cutime + m.cstime;
    const d = details[i];
    if (d === undefined) return;
    sample.rssBytes += d.rss;
    if (d.io === undefined) sample.ioAvailable = false;
    else {
      sample.readBytes += d.io.read;
      sample.writeBytes += d.io.write;
    }
  });
  return sample;
}

/** Samples every live process of process group `pgid` (scans /proc). */
export async function sampleGroup(pgid: number): Promise<GroupSample> {
  return sampleProcesses(await listGroupProcesses(pgid), pgid);
}

/**
 * CPU use in percent of one core: since the previous sample, or for the first sample the average since
 * the process started (from its start time in clock ticks and the system uptime).
 */
export async function cpuPercentSince(
  prev: { ticks: number; at: number } | undefined,
  sample: GroupSample,
  handleStartTicks: number | undefined,
  now: number,
): Promise<number> {
  const hz = clockTicksPerSecond();
  if (prev !== undefined) {
    const seconds = (now - prev.at) / 1000;
    return seconds > 0 ? Math.max(0, (sample.cpuTicks - prev.ticks) / hz / seconds) * 100 : 0;
  }
  const startTicks = sample.leaderStartTicks ?? handleStartTicks;
  const elapsed = startTicks === undefined ? 0 : (await readUptimeSeconds()) - startTicks / hz;
  return elapsed > 0 ? (sample.cpuTicks / hz / elapsed) * 100 : 0;
}

/** Processes by process group from a /proc scan, shared by the calls within `maxAgeMs` of it. */
export class GroupScan {
  #last: { at: number; groups: Promise<Map<number, ProcStat[]>> } | undefined;

  constructor(private readonly maxAgeMs: number) {}

  groups(): Promise<Map<number, ProcStat[]>> {
    const now = performance.now();
    if (this.#last === undefined || now - this.#last.at > this.maxAgeMs) {
      const groups = scanProcesses().then((all) => {
        const map = new Map<number, ProcStat[]>();
        for (const p of all) map.set(p.pgrp, [...(map.get(p.pgrp) ?? []), p]);
        return map;
      });
      this.#last = { at: now, groups };
    }
    return this.#last.groups;
  }
}
