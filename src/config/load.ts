import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, resolve } from 'node:path';
import { isMap, isNode, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import { didYouMean } from './did-you-mean.js';
import { fileSyncedPostgresCommand, fileSyncedPostgresDataDir } from './file-sync-databases.js';
import { unknownPlaceholders } from './placeholders.js';
import { stateDirClashes } from './state-dirs.js';
import { parseListen } from './units.js';
import { fileSchema, type SpecFile } from './schema.js';

/** One problem found in a spec file, with its position. */
export interface ConfigProblem {
  file: string;
  line: number;
  column: number;
  /** Field path such as `services[0].health.interval`. */
  field: string;
  message: string;
}

/**
 * Thrown when a spec file can't be read, parsed or validated. `problems` holds every problem found,
 * each naming file, line, column and field; the message is their readable list.
 */
export class ConfigError extends UnderstudyError {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[], cause?: unknown) {
    super(ErrorCode.Config, formatProblems(problems), { cause, details: { problems } });
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

function formatProblems(problems: ConfigProblem[]): string {
  return problems
    .map((p) => `${p.file}:${p.line}:${p.column}: ${p.field ? `${p.field}: ` : ''}${p.message}`)
    .join('\n');
}

/** A loaded spec: the validated file plus where it came from. */
export interface LoadedSpec {
  spec: SpecFile;
  /** Absolute path of the file. */
  file: string;
  /** Directory of the file: relative paths in the spec resolve against it. */
  dir: string;
}

export interface LoadSpecOptions {
  /** Check that each service's program exists and is executable. @default true */
  checkCommands?: boolean;
}

/**
 * Reads, parses and validates an `understudy.yaml`.
 * Thrown when anything is wrong: {@link ConfigError} (code `UNDERSTUDY_ERR_CONFIG`) listing every problem.
 */
export function loadSpecFile(path: string, options: LoadSpecOptions = {}): LoadedSpec {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason =
      (err as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'file not found'
        : `cannot read: ${String((err as Error).message)}`;
    throw new ConfigError([{ file, line: 0, column: 0, field: '', message: reason }], err);
  }
  const spec = parseSpecText(text, file);
  const loaded = { spec, file, dir: dirname(file) };
  if (options.checkCommands !== false) checkCommands(loaded, text);
  return loaded;
}

/** Parses and validates spec text; `file` names it in errors. Thrown: {@link ConfigError}. */
export function parseSpecText(text: string, file: string): SpecFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return {
          file,
          line: pos.line,
          column: pos.col,
          field: '',
          message: `invalid YAML: ${firstLine(e.message)}`,
        };
      }),
    );
  }
  const data: unknown = doc.toJS();
  const result = fileSchema.safeParse(data ?? {});
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.flatMap((issue) => issueToProblems(issue, doc, lineCounter, file)),
    );
  }
  const problems = crossServiceProblems(result.data, doc, lineCounter, file);
  if (problems.length > 0) throw new ConfigError(problems);
  return result.data;
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}

type Path = (string | number)[];

function fieldName(path: Path): string {
  return path.reduce<string>(
    (acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p),
    '',
  );
}

/** Position of the deepest existing node along `path` (or of a key in a map, when `key` is given). */
function positionOf(
  doc: Document,
  lc: LineCounter,
  path: Path,
  key?: string,
): { line: number; column: number } {
  let node: unknown = doc.contents;
  for (let i = path.length; i >= 0; i--) {
    const candidate = i === 0 ? doc.contents : doc.getIn(path.slice(0, i), true);
    if (isNode(candidate)) {
      node = candidate;
      break;
    }
  }
  if (key !== undefined && isMap(node)) {
    const pair = node.items.find((p) => isNode(p.key) && (p.key as Node & { value?: unknown }).value === key);
    if (pair && isNode(pair.key)) node = pair.key;
  }
  const range = isNode(node) ? node.range : undefined;
  const pos = lc.linePos(range?.[0] ?? 0);
  return { line: pos.line, column: pos.col };
}

function issueToProblems(
  issue: z.core.$ZodIssue,
  doc: Document,
  lc: LineCounter,
  file: string,
): ConfigProblem[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(path);
    return issue.keys.map((key) => {
      const suggestion = didYouMean(key, known);
      const hint = suggestion
        ? `; did you mean '${suggestion}'?`
        : known.length
          ? `; expected one of: ${known.join(', ')}`
          : '';
      return {
        file,
        ...positionOf(doc, lc, path, key),
        field: fieldName([...path, key]),
        message: `unknown key '${key}'${hint}`,
      };
    });
  }
  return [
    { file, ...positionOf(doc, lc, path), field: fieldName(path), message: describeIssue(issue, doc, path) },
  ];
}

function describeIssue(issue: z.core.$ZodIssue, doc: Document, path: Path): string {
  if (issue.code === 'invalid_type') {
    const present = doc.hasIn(path);
    if (!present) return `required field is missing (expected ${issue.expected})`;
    const value: unknown = doc.getIn(path);
    return `expected ${issue.expected}, got ${describeValue(value)}`;
  }
  if (issue.code === 'invalid_value') {
    return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(doc.getIn(path))}`;
  }
  return issue.message;
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (isSeq(value) || Array.isArray(value)) return 'a list';
  if (isMap(value) || typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** The keys the schema accepts at `path`, for did-you-mean. */
function knownKeysAt(path: Path): string[] {
  let schemas: unknown[] = [fileSchema];
  for (const step of [...path, undefined]) {
    const unwrapped = schemas.flatMap(unwrap);
    if (step === undefined) {
      return [
        ...new Set(
          unwrapped.flatMap((s) => (defOf(s)?.type === 'object' ? Object.keys(defOf(s)?.shape ?? {}) : [])),
        ),
      ];
    }
    schemas = unwrapped.flatMap((s) => {
      const def = defOf(s);
      if (def?.type === 'object' && typeof step === 'string')
        return def.shape?.[step] ? [def.shape[step]] : [];
      if (def?.type === 'array' && typeof step === 'number') return def.element ? [def.element] : [];
      if (def?.type === 'record') return def.valueType ? [def.valueType] : [];
      return [];
    });
  }
  return [];
}

interface LooseDef {
  type?: string;
  shape?: Record<string, unknown>;
  element?: unknown;
  valueType?: unknown;
  innerType?: unknown;
  in?: unknown;
  options?: unknown[];
}

function defOf(schema: unknown): LooseDef | undefined {
  return (schema as { _zod?: { def?: LooseDef } })._zod?.def;
}

function unwrap(schema: unknown): unknown[] {
  const def = defOf(schema);
  if (!def) return [];
  switch (def.type) {
    case 'optional':
    case 'default':
    case 'prefault':
    case 'nullable':
    case 'readonly':
      return unwrap(def.innerType);
    case 'pipe':
      return unwrap(def.in);
    case 'union':
      return (def.options ?? []).flatMap(unwrap);
    default:
      return [schema];
  }
}

/** Checks that span services: duplicate names, clashing fixed ports and listen addresses. */
function crossServiceProblems(spec: SpecFile, doc: Document, lc: LineCounter, file: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const at = (path: Path, message: string): void => {
    problems.push({ file, ...positionOf(doc, lc, path), field: fieldName(path), message });
  };
  const names = new Map<string, number>();
  const ports = new Map<number, string>();
  const claim = (port: number, owner: string, path: Path): void => {
    const previous = ports.get(port);
    if (previous !== undefined) at(path, `port ${port} is already used by ${previous}`);
    else ports.set(port, owner);
  };
  const apiPort = parseListen(spec.api.listen).port;
  if (apiPort !== 0) claim(apiPort, 'api.listen', ['api', 'listen']);
  spec.services.forEach((s, i) => {
    const first = names.get(s.name);
    if (first !== undefined)
      at(['services', i, 'name'], `duplicate service name '${s.name}' (also services[${first}])`);
    else names.set(s.name, i);
    const instances = s.scaling.max + s.echo.count + Math.max(s.shadow.count, s.shadow.onForecast ? 1 : 0);
    for (const [portName, port] of Object.entries(s.ports)) {
      if (port === 0) continue;
      if (instances > 1) {
        at(
          ['services', i, 'ports', portName],
          `port ${port} is fixed, but up to ${instances} instances of '${s.name}' (serving, echoes, shadows) run on this host and each needs its own; use 0 to allocate, and routing.listen for a stable public address`,
        );
      }
      claim(port, `services[${i}].ports.${portName}`, ['services', i, 'ports', portName]);
    }
    const portNames = Object.keys(s.ports);
    s.command.forEach((arg, j) => {
      for (const name of unknownPlaceholders(arg, portNames))
        at(['services', i, 'command', j], `unknown placeholder {${name}}`);
    });
    for (const [key, value] of Object.entries(s.env)) {
      for (const name of unknownPlaceholders(value, portNames))
        at(['services', i, 'env', key], `unknown placeholder {${name}}`);
    }
    const database = fileSyncedPostgresCommand(s);
    if (database !== undefined) at(['services', i, 'echo'], database);
    if (s.routing.listen) {
      const port = parseListen(s.routing.listen).port;
      if (port !== 0) claim(port, `services[${i}].routing.listen`, ['services', i, 'routing', 'listen']);
    }
  });
  for (const clash of stateDirClashes(spec.services, dirname(resolve(file)), spec.dataDir))
    at(['services', clash.service, 'stateDir'], clash.message);
  return problems;
}

/** Every service's program must exist and be executable (after `{specDir}` substitution). */
function checkCommands(loaded: LoadedSpec, text: string): void {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  const problems: ConfigProblem[] = [];
  loaded.spec.services.forEach((s, i) => {
    const cwd = resolve(loaded.dir, (s.cwd ?? '.').replaceAll('{specDir}', loaded.dir));
    const path: Path = ['services', i, 'command', 0];
    const problem = (message: string): void => {
      problems.push({ file: loaded.file, ...positionOf(doc, lc, path), field: fieldName(path), message });
    };
    if (!isDirectory(cwd)) {
      problems.push({
        file: loaded.file,
        ...positionOf(doc, lc, ['services', i, 'cwd']),
        field: `services[${i}].cwd`,
        message: `working directory ${cwd} does not exist`,
      });
      return;
    }
    const program = (s.command[0] ?? '').replaceAll('{specDir}', loaded.dir);
    if (/\{[a-zA-Z.]+\}/.test(program)) return; // resolved per instance; checked at start
    const found = resolveProgram(program, cwd);
    if (found === 'missing')
      problem(`command '${program}' not found${program.includes('/') ? ` (looked in ${cwd})` : ' on PATH'}`);
    if (found === 'not-executable') problem(`command '${program}' is not executable`);
  });
  if (problems.length > 0) throw new ConfigError(problems);
}

/**
 * At `up`, once the data directory is known: refuses a file-synced echo of a service whose state
 * directories already hold a PostgreSQL data directory (whatever its command). Thrown: {@link ConfigError}.
 */
export function checkStateDirsForDatabases(loaded: LoadedSpec, dataDir: string): void {
  const text = readFileSync(loaded.file, 'utf8');
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  const problems: ConfigProblem[] = [];
  loaded.spec.services.forEach((s, i) => {
    const message = fileSyncedPostgresDataDir(s, dataDir, loaded.dir);
    if (message === undefined) return;
    const path: Path = ['services', i, 'echo'];
    problems.push({ file: loaded.file, ...positionOf(doc, lc, path), field: fieldName(path), message });
  });
  if (problems.length > 0) throw new ConfigError(problems);
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Resolves a program like the shell does: a path if it has a slash, else a PATH search. */
export function resolveProgram(program: string, cwd: string): string | 'missing' | 'not-executable' {
  const candidates = program.includes('/')
    ? [isAbsolute(program) ? program : resolve(cwd, program)]
    : (process.env.PATH ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((d) => resolve(d, program));
  let sawFile = false;
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) continue;
      sawFile = true;
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // try the next candidate
    }
  }
  return sawFile ? 'not-executable' : 'missing';
}
