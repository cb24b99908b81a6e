import { ApiClient } from '../../api/index.js';
import { isLocalProcessAlive } from '../../store/index.js';
import { ErrorCode, UnderstudyError } from '../../errors/index.js';
import { ExitCode, reportError } from '../exit-codes.js';

export interface DownOptions {
  dataDir: string;
  timeoutMs: number;
}

/** `understudy down`: asks the running control plane to stop, and waits until its process has exited. */
export async function runDown(options: DownOptions): Promise<number> {
  try {
    const client = ApiClient.fromDataDir(options.dataDir);
    await client.shutdown('understudy down');
    const deadline = Date.now() + options.timeoutMs;
    while (isLocalProcessAlive(client.endpoint.pid)) {
      if (Date.now() > deadline) {
        throw new UnderstudyError(
          ErrorCode.ApiUnreachable,
          `the control plane (pid ${client.endpoint.pid}) is still running after ${options.timeoutMs} ms`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    process.stdout.write(
      `understudy: stopped the control plane (pid ${client.endpoint.pid}) and its instances\n`,
    );
    return ExitCode.Ok;
  } catch (err) {
    return reportError(err);
  }
}
