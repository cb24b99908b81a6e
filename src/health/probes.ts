import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';

/** Result of one active health check. */
export interface ProbeResult {
  ok: boolean;
  /** One line on what was seen: status code, error, exit code. */
  detail: string;
  latencyMs: number;
}

/** What to check: an HTTP GET, a TCP connect, or a command. */
export type ProbeTarget =
  | { kind: 'http'; host: string; port: number; path: string }
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'exec'; argv: string[]; cwd: string; env: Record<string, string> };

/** Runs one check; never throws (a failure is a result). */
export function probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  const started = performance.now();
  const done = (ok: boolean, detail: string): ProbeResult => ({
    ok,
    detail,
    latencyMs: performance.now() - started,
  });
  switch (target.kind) {
    case 'http':
      return new Promise((resolve) => {
        const req = request(
          {
            host: target.host,
            port: target.port,
            path: target.path,
            method: 'GET',
            timeout: timeoutMs,
            agent: false,
          },
          (res) => {
            res.resume();
            const code = res.statusCode ?? 0;
            resolve(done(code >= 200 && code < 400, `HTTP ${code}`));
          },
        );
        req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
        req.on('error', (err) => resolve(done(false, err.message)));
        req.end();
      });
    case 'tcp':
      return new Promise((resolve) => {
        const socket = connect({ host: target.host, port: target.port, timeout: timeoutMs });
        socket.on('connect', () => {
          socket.destroy();
          resolve(done(true, 'connected'));
        });
        socket.on('timeout', () => socket.destroy(new Error(`no connection within ${timeoutMs} ms`)));
        socket.on('error', (err) => resolve(done(false, err.message)));
      });
    case 'exec':
      return new Promise((resolve) => {
        const [cmd, ...args] = target.argv;
        execFile(
          cmd ?? 'false',
          args,
          { cwd: target.cwd, env: { ...process.env, ...target.env }, timeout: timeoutMs },
          (err) => {
            if (!err) resolve(done(true, 'exit 0'));
            else
              resolve(
                done(
                  false,
                  err.killed
                    ? `timed out after ${timeoutMs} ms`
                    : `exit ${String(err.code)}: ${err.message.split('\n')[0]}`,
                ),
              );
          },
        );
      });
  }
}
