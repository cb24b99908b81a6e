import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ApiServer } from '../api/index.js';
import {
  checkStateDirsForDatabases,
  expandPlaceholders,
  loadSpecFile,
  type LoadedSpec,
} from '../config/index.js';
import { ControlPlane, type ControlDecision } from '../control/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { ProcessRuntime } from '../runtime/index.js';
import { acquireDataDirLock, prepareDataDir, SqliteStateStore } from '../store/index.js';

/** Options of the embedded mode: control plane, SQLite store, process runtime and API in this process. */
export interface EmbeddedOptions {
  /** Path of the spec file. */
  specFile: string;
  /** Data directory; the spec's `dataDir` wins when set. */
  dataDir: string;
  /** Overrides the spec's `api.listen`. */
  apiListen?: string;
  /** Called for every decision from the first one on (before any instance starts), with its control plane. */
  onDecision?: (decision: ControlDecision, control: ControlPlane) => void;
  /** Called when the API asks the process to shut down. */
  onShutdownRequest?: (reason: string) => void;
}

/** A running embedded Understudy. */
export interface Embedded {
  spec: LoadedSpec;
  dataDir: string;
  control: ControlPlane;
  api: ApiServer;
  /** Stops the API, every instance (gracefully), the store, and releases the data directory. Idempotent. */
  close(): Promise<void>;
}

/**
 * Validates everything that can be validated before anything starts (spec, commands, data and state
 * directories), then starts the embedded control plane. Thrown: config, state-dir and already-running
 * errors (exit 2), with nothing left running.
 */
export async function startEmbedded(options: EmbeddedOptions): Promise<Embedded> {
  const spec = loadSpecFile(options.specFile);
  const dataDir = resolve(spec.spec.dataDir ? resolve(spec.dir, spec.spec.dataDir) : options.dataDir);
  // Owner-only: the store holds the specs with their env values. An older version's 0755 is tightened.
  // A PostgreSQL data directory left in a state directory is refused under a file-synced echo.
  checkStateDirsForDatabases(spec, dataDir);
  const prepared = prepareDataDir(dataDir);
  ensureWritableDir(dataDir, 'data directory');
  for (const svc of spec.spec.services) {
    // The state directory's parent must be creatable and writable for every instance.
    const sample = resolve(
      dataDir,
      expandPlaceholders(svc.stateDir, {
        instance: `${svc.name}-0`,
        service: svc.name,
        role: 'primary',
        specDir: spec.dir,
        dataDir,
        ports: {},
        stateDir: '',
      }),
    );
    ensureWritableDir(dirname(sample), `state directory of service '${svc.name}' (${svc.stateDir})`);
  }
  const release = await acquireDataDirLock(dataDir);
  const cleanups: (() => Promise<void> | void)[] = [release];
  const undo = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c();
  };
  try {
    const store = await SqliteStateStore.create({ dataDir });
    cleanups.push(() => store.close());
    const runtime = await ProcessRuntime.create({});
    cleanups.push(() => runtime.close());
    const control = await ControlPlane.create({ spec, dataDir, store, runtime });
    cleanups.push(() => control.close());
    const onDecision = options.onDecision;
    if (onDecision) cleanups.push(control.decisions.subscribe((d) => onDecision(d, control)));
    if (prepared.tightenedFrom !== undefined) {
      control.decisions.record({
        kind: 'notice',
        service: '',
        what: `tighten the data directory ${dataDir} to 0700`,
        why: `it was ${prepared.tightenedFrom.toString(8).padStart(4, '0')} (readable by others) and holds the store, whose specs carry env values`,
        inputs: { dataDir, from: prepared.tightenedFrom, to: 0o700 },
        outcome: { status: 'ok' },
      });
    }
    // The API (and its api.json) appears once the control plane has adopted survivors and started the
    // instances: a client never sees records of a previous run as if they were current.
    await control.start();
    const api = await ApiServer.start({
      control,
      dataDir,
      listen: options.apiListen ?? spec.spec.api.listen,
      telemetry: control.telemetry,
      metricsPublic: spec.spec.api.metricsPublic,
      ...(options.onShutdownRequest ? { onShutdown: options.onShutdownRequest } : {}),
      status: () => ({ runtime: runtime.name, limits: runtime.limitsSupport(), specFile: spec.file }),
    });
    cleanups.push(() => api.close());
    let closing: Promise<void> | undefined;
    return {
      spec,
      dataDir,
      control,
      api,
      close: () => (closing ??= undo()),
    };
  } catch (err) {
    await undo();
    throw err;
  }
}

/** Creates `dir` if needed and proves it writable. Thrown: UNDERSTUDY_ERR_STATE_DIR. */
function ensureWritableDir(dir: string, what: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    // Prove it by writing: access(W_OK) says yes to root even on a read-only mount.
    const probe = join(dir, `.understudy-probe-${process.pid}`);
    writeFileSync(probe, '');
    rmSync(probe);
  } catch (err) {
    throw new UnderstudyError(
      ErrorCode.StateDir,
      `${what} ${dir} is not a writable directory: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
