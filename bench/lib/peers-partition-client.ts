// The Redis client of the partition fault of `npm run bench -- peers` (bench/lib/peers-partition.ts),
// run inside a namespace of the lab (nothing of the lab is reachable from the machine's own namespace):
//   peers-partition-client write <name> <target>   unique SETs (`<name>-<i>`), one at a time (1 s
//       timeout); each acknowledgement printed as one JSON line {"k","s","sent","at"} (key, run_id of
//       the server that acknowledged it, when sent and acknowledged: ms since the epoch, the clock the
//       bench shares); a line "stop" on stdin (or its end) ends the loop, then {"done":true}.
//   peers-partition-client check <target>          reads a JSON array of keys on stdin, MGETs them from
//       the master `target` names now; prints {"present":[keys]}.
// target: `addr:<host>:<port>` (a fixed address: Understudy's service address, or the master a client on
// the master's host knows) or `sentinel:<host>:<port>,…` (the master Sentinel names,
// `SENTINEL get-master-addr-by-name mymaster`, asked again after every failed connection).
import { createInterface } from 'node:readline';
import { RespClient } from './resp.js';
import { respWriteLoop, type Resolve } from './resp-write-loop.js';

/** Parses a target argument (see the file's head). Thrown: a target of neither form. */
function parseTarget(target: string): Resolve {
  const [kind, ...rest] = target.split(':');
  if (kind === 'addr' && rest.length === 2) {
    const addr = { host: rest[0]!, port: Number(rest[1]) };
    return () => Promise.resolve(addr);
  }
  if (kind === 'sentinel' && rest.length >= 2) {
    const sentinels = rest
      .join(':')
      .split(',')
      .map((hp) => {
        const i = hp.lastIndexOf(':');
        return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
      });
    return async () => {
      for (const s of sentinels) {
        const c = await RespClient.connect(s.host, s.port, 300).catch(() => undefined);
        if (!c) continue;
        try {
          const r = await c.command(['SENTINEL', 'get-master-addr-by-name', 'mymaster'], 500);
          if (Array.isArray(r) && r.length === 2) return { host: String(r[0]), port: Number(r[1]) };
        } catch {
          // the next sentinel
        } finally {
          c.close();
        }
      }
      throw new Error('no sentinel answered');
    };
  }
  throw new Error(`peers-partition-client: target '${target}' is neither addr:<host>:<port> nor sentinel:…`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Now, ms since the epoch with sub-ms precision (the clock every process of the machine shares). */
const now = (): number => performance.timeOrigin + performance.now();

async function write(name: string, resolve: Resolve): Promise<void> {
  const stop = { now: false };
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (l) => {
    if (l.trim() === 'stop') stop.now = true;
  });
  lines.on('close', () => (stop.now = true));
  await respWriteLoop({
    resolve,
    key: (i) => `${name}-${i}`,
    clock: now,
    onAck: (a) =>
      process.stdout.write(JSON.stringify({ k: a.key, s: a.server, sent: a.sent, at: a.at }) + '\n'),
    stop,
  });
  process.stdout.write(JSON.stringify({ done: true }) + '\n');
  lines.close();
}

async function check(resolve: Resolve): Promise<void> {
  let input = '';
  for await (const chunk of process.stdin) input += String(chunk);
  const keys = JSON.parse(input) as string[];
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const addr = await resolve();
      const reader = await RespClient.connect(addr.host, addr.port, 1000);
      const present: string[] = [];
      try {
        for (let i = 0; i < keys.length; i += 500) {
          const batch = keys.slice(i, i + 500);
          if (batch.length === 0) break;
          const values = await reader.command(['MGET', ...batch], 5000);
          if (!Array.isArray(values)) throw new Error(`MGET answered ${String(values)}`);
          batch.forEach((k, j) => {
            if (values[j] !== null) present.push(k);
          });
        }
      } finally {
        reader.close();
      }
      process.stdout.write(JSON.stringify({ present }) + '\n');
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'write' && args.length === 2) await write(args[0]!, parseTarget(args[1]!));
else if (mode === 'check' && args.length === 1) await check(parseTarget(args[0]!));
else {
  process.stderr.write('usage: peers-partition-client write <name> <target> | check <target>\n');
  process.exit(2);
}
// stdout is a pipe (written asynchronously): exit once everything printed has been handed over.
await new Promise<void>((r) => process.stdout.write('', () => r()));
process.exit(0);
