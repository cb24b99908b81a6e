import { createServer } from 'node:net';
import { ErrorCode, UnderstudyError } from '../errors/index.js';

function listenOnce(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port, host, exclusive: true }, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(bound));
    });
  });
}

/**
 * Asks the OS for a free TCP port on `host` (listen on port 0, read it, close).
 * The port is free when returned; another process may still take it before the instance binds it.
 * Throws UNDERSTUDY_ERR_PORT when no port can be bound on `host`.
 */
export async function allocatePort(host = '127.0.0.1'): Promise<number> {
  try {
    const port = await listenOnce(0, host);
    if (port <= 0) throw new Error('the OS returned no port');
    return port;
  } catch (cause) {
    throw new UnderstudyError(
      ErrorCode.Port,
      `Could not allocate a free port on ${host}: ${(cause as Error).message}.`,
      {
        cause,
        details: { host },
      },
    );
  }
}

/**
 * Checks that `port` can be bound on `host` right now.
 * Throws UNDERSTUDY_ERR_PORT when it is in use (or cannot be bound, e.g. a privileged port).
 */
export async function assertPortFree(port: number, host = '127.0.0.1'): Promise<void> {
  if (!Number.isInteger(port) || port <= 0 || port > 65_535) {
    throw new UnderstudyError(ErrorCode.Port, `Port ${port} is not a valid TCP port (expected 1-65535).`, {
      details: { port, host },
    });
  }
  try {
    await listenOnce(port, host);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why =
      code === 'EADDRINUSE' ? 'is already in use' : `cannot be bound (${code ?? (cause as Error).message})`;
    throw new UnderstudyError(
      ErrorCode.Port,
      `Port ${port} on ${host} ${why}; choose another port or stop what holds it.`,
      {
        cause,
        details: { port, host },
      },
    );
  }
}
