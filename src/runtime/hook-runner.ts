import { spawn } from 'node:child_process';

/** Bytes of a hook's stdout (or HTTP body) kept: the output the contract promises to read. */
export const HOOK_OUTPUT_LIMIT = 64 * 1024;
/** Bytes of a hook's stderr kept for its error message. */
const STDERR_TAIL = 4096;

/**
 * One run of an external-echo hook (docs/recipes.md, "The hook contract") on the instance's host:
 * exactly one of `exec` or `http`.
 */
export interface HookRequest {
  /** The hook's name (`follow`, `promote`, …), for messages. */
  name: string;
  /** argv run in `cwd` without a shell, in its own process group. */
  exec?: { argv: string[]; cwd: string };
  /** POST to `http://<address>:<port><path>` with `env` as the JSON body (`address` @default 127.0.0.1). */
  http?: { address?: string; port: number; path: string };
  /** The hook's context: `UNDERSTUDY_*` variables (added to the inherited environment of an exec hook). */
  env: Record<string, string>;
  /** The process group is killed (or the request aborted) after this, ms. */
  timeoutMs: number;
}

/** What a hook run gave. A failure is a result, never a rejection. */
export interface HookResult {
  /** Exit status 0 (exec) or a 2xx answer (http) within the timeout. */
  ok: boolean;
  /** Not done within the timeout (its process group was killed). */
  timedOut: boolean;
  /** Exec: the exit status (null when ended by a signal or not started). */
  exitCode?: number | null;
  /** Exec: the signal that ended it. */
  signal?: string;
  /** Http: the answer's status. */
  status?: number;
  /** The first {@link HOOK_OUTPUT_LIMIT} bytes of stdout (exec) or of the body (http). */
  stdout: string;
  /** The last bytes of stderr (exec), or why it could not run (spawn error, connection refused). */
  stderr: string;
  ms: number;
}

/** Runs a hook; never throws (see {@link HookResult}). */
export async function runHookRequest(req: HookRequest): Promise<HookResult> {
  if (req.exec) return runExec(req, req.exec);
  if (req.http) return runHttp(req, req.http);
  return { ok: false, timedOut: false, stdout: '', stderr: 'the hook has neither exec nor http', ms: 0 };
}

function runExec(req: HookRequest, exec: { argv: string[]; cwd: string }): Promise<HookResult> {
  const t0 = performance.now();
  const ms = (): number => Number((performance.now() - t0).toFixed(1));
  return new Promise((resolve) => {
    const [program, ...args] = exec.argv;
    if (!program) {
      resolve({ ok: false, timedOut: false, stdout: '', stderr: 'empty argv', ms: 0 });
      return;
    }
    let stdout = Buffer.alloc(0);
    let stderr = Buffer.alloc(0);
    let timedOut = false;
    let settled = false;
    const child = spawn(program, args, {
      cwd: exec.cwd,
      env: { ...process.env, ...req.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, req.timeoutMs);
    child.stdout.on('data', (c: Buffer) => {
      if (stdout.length < HOOK_OUTPUT_LIMIT)
        stdout = Buffer.concat([stdout, c]).subarray(0, HOOK_OUTPUT_LIMIT);
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr = Buffer.concat([stderr, c]);
      if (stderr.length > STDERR_TAIL) stderr = stderr.subarray(stderr.length - STDERR_TAIL);
    });
    const done = (r: Omit<HookResult, 'ms' | 'stdout' | 'stderr'>, why?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...r, stdout: stdout.toString('utf8'), stderr: why ?? stderr.toString('utf8'), ms: ms() });
    };
    child.on('error', (err) => done({ ok: false, timedOut, exitCode: null }, err.message));
    child.on('close', (code, signal) => {
      // Children it left behind in its group do not outlive it.
      if (timedOut) killGroup();
      done({
        ok: !timedOut && code === 0,
        timedOut,
        exitCode: code,
        ...(signal ? { signal } : {}),
      });
    });
  });
}

async function runHttp(
  req: HookRequest,
  http: { address?: string; port: number; path: string },
): Promise<HookResult> {
  const address = http.address ?? '127.0.0.1';
  const t0 = performance.now();
  const ms = (): number => Number((performance.now() - t0).toFixed(1));
  const host = address.includes(':') ? `[${address}]` : address;
  const signal = AbortSignal.timeout(req.timeoutMs);
  try {
    const res = await fetch(`http://${host}:${http.port}${http.path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(req.env),
      signal,
    });
    const body = await readLimited(res);
    const ok = res.status >= 200 && res.status <= 299;
    return { ok, timedOut: false, status: res.status, stdout: body, stderr: '', ms: ms() };
  } catch (err) {
    return {
      ok: false,
      timedOut: signal.aborted,
      stdout: '',
      stderr: signal.aborted ? '' : (err as Error).message,
      ms: ms(),
    };
  }
}

async function readLimited(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
    if (size >= HOOK_OUTPUT_LIMIT) {
      await reader.cancel();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, HOOK_OUTPUT_LIMIT).toString('utf8');
}
