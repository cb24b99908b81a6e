import { spawn } from 'node:child_process';
import { ApiClient } from '../../api/index.js';
import { ExitCode, reportError } from '../exit-codes.js';

export interface DashboardOptions {
  dataDir: string;
  /** Open the URL with `xdg-open` as well as printing it. @default false */
  open: boolean;
}

/** The URL a browser on this machine reaches the API at (a wildcard listen is reached on loopback). */
export function browserBase(apiUrl: string): string {
  const u = new URL(apiUrl);
  if (u.hostname === '0.0.0.0' || u.hostname === '[::]') u.hostname = '127.0.0.1';
  return u.origin;
}

/**
 * `understudy dashboard`: asks the running control plane for a one-time login code (with the API
 * token, which never goes into the URL) and prints the login URL; `--open` opens it too. The code
 * works once, within a minute; the browser then holds a session cookie, not the token.
 */
export async function runDashboard(options: DashboardOptions): Promise<number> {
  try {
    const client = ApiClient.fromDataDir(options.dataDir);
    const { path, expiresAt } = await client.request<{ path: string; expiresAt: number }>(
      'POST',
      '/v1/ui/login-codes',
    );
    const url = browserBase(client.endpoint.url) + path;
    process.stdout.write(`${url}\n`);
    const seconds = Math.max(0, Math.round((expiresAt - Date.now()) / 1000));
    process.stderr.write(
      `(a one-time login link, valid for ${seconds} s; run 'understudy dashboard' again for a new one)\n`,
    );
    if (options.open) {
      const child = spawn('xdg-open', [url], { detached: true, stdio: 'ignore' });
      child.on('error', () => process.stderr.write('could not run xdg-open: open the URL above yourself\n'));
      child.unref();
    }
    return ExitCode.Ok;
  } catch (err) {
    return reportError(err);
  }
}
