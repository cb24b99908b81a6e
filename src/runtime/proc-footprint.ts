import { readdir, readFile, readlink } from 'node:fs/promises';

/**
 * What an instance's processes were seen to use, from /proc: the TCP ports they listen on and the
 * remote ends they are connected to (/proc/<pid>/net/tcp and tcp6, matched to their sockets by inode),
 * the shared libraries they map (/proc/<pid>/maps) and the regular files they keep open (/proc/<pid>/fd).
 */
export interface InstanceFootprint {
  listening: number[];
  /** Remote `address:port` of established connections (IPv6 addresses in brackets). */
  connected: string[];
  libraries: string[];
  files: string[];
}

/** TCP states of /proc/net/tcp (hex): established and listen. */
const ESTABLISHED = '01';
const LISTEN = '0A';

/** One row of /proc/net/tcp{,6}. */
export interface TcpSocket {
  localPort: number;
  remote: string;
  remotePort: number;
  state: string;
  inode: number;
}

/** An address of /proc/net/tcp (hex, each 32-bit word little-endian) as text. */
export function decodeAddress(hex: string): string {
  if (hex.length === 8) {
    const b = hex.match(/../g)?.map((x) => parseInt(x, 16)) ?? [];
    return b.reverse().join('.');
  }
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => (w.match(/../g) ?? []).reverse());
  const groups: string[] = [];
  for (let i = 0; i < bytes.length; i += 2) groups.push(`${bytes[i]}${bytes[i + 1]}`.replace(/^0{1,3}/, ''));
  const text = groups
    .map((g) => g || '0')
    .join(':')
    .toLowerCase();
  if (text.startsWith('0:0:0:0:0:ffff:')) {
    // An IPv4-mapped address: shown as IPv4.
    return bytes
      .slice(12)
      .map((b) => parseInt(b, 16))
      .join('.');
  }
  if (text === '0:0:0:0:0:0:0:0') return '[::]';
  if (text === '0:0:0:0:0:0:0:1') return '[::1]';
  return `[${text}]`;
}

/** Parses the text of /proc/net/tcp or tcp6. */
export function parseProcNetTcp(text: string): TcpSocket[] {
  const out: TcpSocket[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [local, remote, state, inode] = [f[1], f[2], f[3], f[9]];
    if (!local || !remote || !state || !inode) continue;
    const [, lport] = local.split(':');
    const [raddr, rport] = remote.split(':');
    if (lport === undefined || raddr === undefined || rport === undefined) continue;
    out.push({
      localPort: parseInt(lport, 16),
      remote: decodeAddress(raddr),
      remotePort: parseInt(rport, 16),
      state,
      inode: Number(inode),
    });
  }
  return out;
}

/** Paths of shared libraries in the text of /proc/<pid>/maps. */
export function librariesInMaps(text: string): string[] {
  const libs = new Set<string>();
  for (const line of text.split('\n')) {
    const path = line.trim().split(/\s+/).slice(5).join(' ');
    if (path.startsWith('/') && /\.so(\.|$)/.test(path) && !path.endsWith('(deleted)')) libs.add(path);
  }
  return [...libs];
}

/** Whether an fd target is a regular file worth listing (not a socket, pipe, device or /proc entry). */
function isFile(target: string): boolean {
  return (
    target.startsWith('/') &&
    !/^\/(dev|proc|sys)\//.test(target) &&
    !target.endsWith('(deleted)') &&
    !target.startsWith('/dev/')
  );
}

async function readOr(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

/** Socket inodes and open files of one process (empty when it is gone or not readable). */
async function fdsOf(pid: number): Promise<{ sockets: Set<number>; files: string[] }> {
  const sockets = new Set<number>();
  const files: string[] = [];
  let names: string[] = [];
  try {
    names = await readdir(`/proc/${pid}/fd`);
  } catch {
    return { sockets, files };
  }
  await Promise.all(
    names.map(async (n) => {
      const target = await readlink(`/proc/${pid}/fd/${n}`).catch(() => '');
      const socket = /^socket:\[(\d+)\]$/.exec(target);
      if (socket?.[1]) sockets.add(Number(socket[1]));
      else if (isFile(target)) files.push(target);
    }),
  );
  return { sockets, files };
}

/** The footprint of a set of processes (an instance's process group); sorted, without duplicates. */
export async function readFootprint(pids: readonly number[]): Promise<InstanceFootprint> {
  const listening = new Set<number>();
  const connected = new Set<string>();
  const libraries = new Set<string>();
  const files = new Set<string>();
  for (const pid of pids) {
    const fds = await fdsOf(pid);
    for (const f of fds.files) files.add(f);
    for (const lib of librariesInMaps(await readOr(`/proc/${pid}/maps`))) libraries.add(lib);
    if (fds.sockets.size === 0) continue;
    // The process's own network namespace: its /proc/<pid>/net.
    const rows = [
      ...parseProcNetTcp(await readOr(`/proc/${pid}/net/tcp`)),
      ...parseProcNetTcp(await readOr(`/proc/${pid}/net/tcp6`)),
    ];
    for (const s of rows) {
      if (!fds.sockets.has(s.inode)) continue;
      if (s.state === LISTEN) listening.add(s.localPort);
      else if (s.state === ESTABLISHED) connected.add(`${s.remote}:${s.remotePort}`);
    }
  }
  return {
    listening: [...listening].sort((a, b) => a - b),
    connected: [...connected].sort(),
    libraries: [...libraries].sort(),
    files: [...files].sort(),
  };
}
