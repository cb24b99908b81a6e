import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { expandPlaceholders } from './placeholders.js';
import type { ServiceSpec } from './schema.js';
import { maxInstances } from './state-dirs.js';

/**
 * File-level sync of a database's data directory is refused (issue 19): the sync engine captures
 * changes per file, in the order it notices them, not in the order the database wrote them (its
 * write-ahead log first, then the data files). A promoted copy can then hold a data page newer than the
 * log that explains it, or lack commits the database had acknowledged. Measured on PostgreSQL 15 under
 * pgbench and a stream of unique inserts, SIGKILL of the primary, promotion by Understudy: the promoted
 * copy started and passed `pg_amcheck`, but acknowledged rows were missing in every run, warm and cold
 * (docs/recipes.md, "Databases and file-level sync"). A database keeps its echo with its own
 * replication: `echo.mode: external`.
 */

/** Programs whose presence in a service's command marks it as a PostgreSQL server. */
const POSTGRES_PROGRAMS = new Set(['postgres', 'postmaster', 'pg_ctl', 'pg_ctlcluster']);

/** Where the remedy is explained. */
const REMEDY =
  "use echo.mode: external (PostgreSQL's own streaming replication, see examples/postgres) or echo.count: 0; docs/recipes.md, 'Databases and file-level sync', says why";

/** Whether a service's echoes (or its warm pool) get their state by file sync. */
export function usesFileSync(spec: ServiceSpec): boolean {
  // `echo.mode: external`: the service's own replication keeps the echo, no file sync.
  if (spec.echo.mode === 'external') return false;
  return spec.echo.count > 0 || spec.scaling.max > 1;
}

/** The PostgreSQL program named in `command` (argv, or words of a shell string), if any. */
export function postgresProgramIn(command: readonly string[]): string | undefined {
  const words = command.flatMap((arg) => arg.split(/[\s;&|()]+/).filter(Boolean));
  for (const [i, word] of words.entries()) {
    const previous = words[i - 1];
    // `runuser -u postgres`, `--user postgres`: a user name, not the program.
    if (previous !== undefined && previous.startsWith('-') && previous !== '--') continue;
    // A path (`/usr/lib/postgresql/15/bin/postgres`) or an image (`postgres:15`).
    const name = basename(word.replace(/^['"]|['"]$/g, '')).replace(/:[\w.-]+$/, '');
    if (POSTGRES_PROGRAMS.has(name)) return name;
  }
  return undefined;
}

/** A file-synced service that runs PostgreSQL, by its command. */
export function fileSyncedPostgresCommand(spec: ServiceSpec): string | undefined {
  if (!usesFileSync(spec)) return undefined;
  const program = postgresProgramIn(spec.command);
  if (program === undefined) return undefined;
  return `a file-synced echo (echo.mode ${spec.echo.mode}) of PostgreSQL (the command runs '${program}') is refused: file sync copies the data directory file by file, not in PostgreSQL's write order, so a promoted copy can miss acknowledged commits or be corrupt; ${REMEDY}`;
}

/** Whether `dir`, or a directory directly inside it, is a PostgreSQL data directory (holds PG_VERSION and global/pg_control). */
export function postgresDataDirIn(dir: string): string | undefined {
  const isDataDir = (d: string): boolean =>
    existsSync(join(d, 'PG_VERSION')) && existsSync(join(d, 'global', 'pg_control'));
  if (isDataDir(dir)) return dir;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return undefined;
  }
  for (const e of entries) if (isDataDir(join(dir, e))) return join(dir, e);
  return undefined;
}

/**
 * At `up`: a file-synced service whose existing state directories hold a PostgreSQL data directory
 * (whatever its command, e.g. a wrapper script). Looks at the state directories of instance ids
 * `<service>-1…` and at every `<service>-N` beside them. Returns the refusal, or undefined.
 */
export function fileSyncedPostgresDataDir(
  spec: ServiceSpec,
  dataDir: string,
  specDir: string,
): string | undefined {
  if (!usesFileSync(spec)) return undefined;
  const dirFor = (instance: string): string =>
    resolve(
      dataDir,
      expandPlaceholders(spec.stateDir, {
        instance,
        service: spec.name,
        role: 'primary',
        specDir,
        dataDir,
        ports: Object.fromEntries(Object.keys(spec.ports).map((n) => [n, 0])),
        stateDir: '',
      }),
    );
  const candidates = new Set<string>();
  for (let n = 1; n <= maxInstances(spec); n++) candidates.add(dirFor(`${spec.name}-${n}`));
  const sample = dirFor(`${spec.name}-0`);
  if (basename(sample) === `${spec.name}-0`) {
    try {
      for (const e of readdirSync(dirname(sample)))
        if (new RegExp(`^${spec.name}-\\d+$`).test(e)) candidates.add(join(dirname(sample), e));
    } catch {
      // no state directories yet
    }
  }
  for (const dir of candidates) {
    const found = postgresDataDirIn(dir);
    if (found !== undefined)
      return `a file-synced echo (echo.mode ${spec.echo.mode}) is refused: ${found} is a PostgreSQL data directory (PG_VERSION, global/pg_control), and file sync copies it file by file, not in PostgreSQL's write order, so a promoted copy can miss acknowledged commits or be corrupt; ${REMEDY}`;
  }
  return undefined;
}
