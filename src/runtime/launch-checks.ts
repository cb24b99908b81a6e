/** Checks done before spawning an instance, so that a bad launch fails with a clear error and nothing started. */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, stat, unlink, writeFile } from 'node:fs/promises';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { ErrorCode, UnderstudyError } from '../errors/index.js';

function spawnError(instanceId: string, message: string, cause?: unknown): UnderstudyError {
  return new UnderstudyError(ErrorCode.RuntimeSpawn, message, {
    ...(cause === undefined ? {} : { cause }),
    details: { instanceId },
  });
}

/** Throws UNDERSTUDY_ERR_RUNTIME_SPAWN unless `cwd` is an existing directory. */
export async function assertCwd(instanceId: string, command: string, cwd: string): Promise<void> {
  try {
    if ((await stat(cwd)).isDirectory()) return;
  } catch (cause) {
    throw spawnError(
      instanceId,
      `Cannot start instance ${instanceId}: its working directory ${cwd} does not exist (command "${command}"). ` +
        'Create the directory or fix `cwd` in the service spec.',
      cause,
    );
  }
  throw spawnError(
    instanceId,
    `Cannot start instance ${instanceId}: its working directory ${cwd} is not a directory (command "${command}").`,
  );
}

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves argv[0] the way execvp would — a name with a slash relative to `cwd`, a bare name through `PATH` —
 * and returns the absolute path. Throws UNDERSTUDY_ERR_RUNTIME_SPAWN naming the command and the instance when
 * it does not exist or is not executable.
 */
export async function resolveCommand(
  instanceId: string,
  command: string,
  cwd: string,
  pathEnv: string | undefined,
): Promise<string> {
  if (command === '') {
    throw spawnError(
      instanceId,
      `Cannot start instance ${instanceId}: its command is empty. Give the program to run in the service spec.`,
    );
  }
  if (command.includes('/')) {
    const path = isAbsolute(command) ? command : resolve(cwd, command);
    if (await isExecutableFile(path)) return path;
    const present = await stat(path).then(
      () => true,
      () => false,
    );
    throw spawnError(
      instanceId,
      `Cannot start instance ${instanceId}: the command "${command}" ${present ? `(${path}) is not an executable file` : `does not exist (looked for ${path})`}. ` +
        'Fix `command` in the service spec or the file permissions.',
    );
  }
  const dirs = (pathEnv ?? '').split(delimiter).filter((d) => d !== '');
  for (const dir of dirs) {
    const candidate = resolve(cwd, join(dir, command));
    if (await isExecutableFile(candidate)) return candidate;
  }
  throw spawnError(
    instanceId,
    `Cannot start instance ${instanceId}: the command "${command}" was not found as an executable in PATH (${dirs.join(delimiter) || 'empty'}). ` +
      'Install it, give its full path, or fix PATH in the service env.',
  );
}

/**
 * Creates `dir` (with parents) if missing and proves it is writable by writing and removing a probe file.
 * Throws UNDERSTUDY_ERR_STATE_DIR otherwise.
 */
export async function ensureWritableDir(instanceId: string, dir: string): Promise<void> {
  const probe = join(dir, `.understudy-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(probe, 'probe', { flag: 'wx' });
    await unlink(probe);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
    throw new UnderstudyError(
      ErrorCode.StateDir,
      `The state directory ${dir} of instance ${instanceId} cannot be created or is not writable (${code}). ` +
        'Choose another `stateDir` in the service spec or fix its permissions; nothing was started.',
      { cause, details: { instanceId, stateDir: dir } },
    );
  }
}
