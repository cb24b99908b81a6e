// The Redis writing client of `npm run bench -- peers` — one loop for the process-fault rows
// (bench/lib/peers-redis.ts, in the bench's process) and the partition rows
// (bench/lib/peers-partition-client.ts, a child in a namespace of the lab).
import { RespClient, parseInfo } from './resp.js';

/** Where the master is now (a fixed address, or what Sentinel names); thrown when it cannot say. */
export type Resolve = () => Promise<{ host: string; port: number }>;

/** One acknowledged SET: its key, the run_id of the server that acknowledged it, when sent and answered. */
export interface RespAck {
  key: string;
  server: string;
  sent: number;
  at: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Unique keys (`key(i)`), one SET at a time (1 s timeout); after any failure it reconnects where
 * `resolve` says (20 ms later). Each connection learns its server's run_id first, so each
 * acknowledgement (`onAck`, times from `clock`) names the server that gave it. Ends once `stop.now`.
 */
export async function respWriteLoop(o: {
  resolve: Resolve;
  key: (i: number) => string;
  clock: () => number;
  onAck: (ack: RespAck) => void;
  stop: { now: boolean };
}): Promise<void> {
  let c: RespClient | undefined;
  let server = '';
  for (let i = 0; !o.stop.now; i++) {
    try {
      if (!c) {
        const addr = await o.resolve();
        c = await RespClient.connect(addr.host, addr.port, 500);
        const info = await c.command(['INFO', 'server'], 1000);
        server = parseInfo(String(info))['run_id'] ?? '';
      }
      const key = o.key(i);
      const sent = o.clock();
      const r = await c.command(['SET', key, String(i)], 1000);
      if (r !== 'OK') throw new Error(String(r));
      o.onAck({ key, server, sent, at: o.clock() });
    } catch {
      c?.close();
      c = undefined;
      await sleep(20);
    }
  }
  c?.close();
}
