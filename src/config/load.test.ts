import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isUnderstudyError } from '../errors/index.js';
import { ConfigError, loadSpecFile, parseSpecText } from './load.js';

function problemsOf(text: string): ConfigError['problems'] {
  try {
    parseSpecText(text, 'u.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const minimal = `services:\n  - name: kv\n    command: [node, server.mjs]\n`;

describe('spec parsing', () => {
  it('applies documented defaults to a minimal service', () => {
    const spec = parseSpecText(minimal, 'u.yaml');
    const kv = spec.services[0]!;
    expect(kv.stateDir).toBe('state/{instance}');
    expect(kv.ports).toEqual({ http: 0 });
    expect(kv.echo).toMatchObject({ count: 1, mode: 'warm', consistency: 'write-through' });
    expect(kv.echo.sync.mode).toBe('continuous');
    expect(kv.restart).toMatchObject({ policy: 'on-failure', maxRestarts: 5, backoff: 100 });
    expect(kv.scaling).toEqual({
      min: 1,
      max: 1,
      target: 0.6,
      policy: 'predictive',
      step: 60_000,
      interval: 15_000,
      coldStart: 30_000,
      stabilization: 300_000,
    });
    expect(kv.shadow).toEqual({
      count: 0,
      cpuFraction: 0.25,
      memoryFraction: 0.1,
      sample: 1,
      onForecast: false,
      deltaThreshold: 0.25,
    });
    expect(spec.api.listen).toBe('127.0.0.1:0');
    expect(spec.api.metricsPublic).toBe(false);
  });

  it('makes /metrics public only when api.metricsPublic is true, and refuses a non-boolean', () => {
    expect(parseSpecText(`api: { metricsPublic: true }\n${minimal}`, 'u.yaml').api.metricsPublic).toBe(true);
    expect(problemsOf(`api: { metricsPublic: yes please }\n${minimal}`)[0]?.field).toBe('api.metricsPublic');
  });

  it('parses durations and sizes written with units', () => {
    const spec = parseSpecText(
      `services:\n  - name: kv\n    command: [x]\n    health: { http: { path: /h }, interval: 250ms, timeout: 2s }\n    resources: { memory: 256Mi, cpu: 0.5 }\n`,
      'u.yaml',
    );
    expect(spec.services[0]!.health).toMatchObject({ interval: 250, timeout: 2000 });
    expect(spec.services[0]!.resources.memory).toBe(256 * 1024 * 1024);
  });

  it('reports malformed YAML with its line and column', () => {
    const [p] = problemsOf('services:\n  - name: kv\n    command: [node\n');
    expect(p?.message).toMatch(/invalid YAML/);
    expect(p?.line).toBeGreaterThanOrEqual(3);
  });

  it('names the field, line and expected type of a wrong type', () => {
    const [p] = problemsOf(`services:\n  - name: kv\n    command: [x]\n    echo:\n      count: three\n`);
    expect(p).toMatchObject({ file: 'u.yaml', line: 5, column: 14, field: 'services[0].echo.count' });
    expect(p?.message).toMatch(/expected number, got string "three"/);
  });

  it('rejects an unknown key with a did-you-mean and the key position', () => {
    const [p] = problemsOf(
      `services:\n  - name: kv\n    command: [x]\n    helth:\n      http: { path: / }\n`,
    );
    expect(p).toMatchObject({ line: 4, column: 5, field: 'services[0].helth' });
    expect(p?.message).toBe("unknown key 'helth'; did you mean 'health'?");
  });

  it('suggests nested keys too', () => {
    const [p] = problemsOf(`services:\n  - name: kv\n    command: [x]\n    echo: { cont: 2 }\n`);
    expect(p?.message).toBe("unknown key 'cont'; did you mean 'count'?");
  });

  it('says a required field is missing', () => {
    const [p] = problemsOf(`services:\n  - name: kv\n`);
    expect(p).toMatchObject({ field: 'services[0].command', line: 2 });
    expect(p?.message).toMatch(/required field is missing/);
  });

  it('lists the allowed values of an enum', () => {
    const [p] = problemsOf(`services:\n  - name: kv\n    command: [x]\n    echo: { mode: lukewarm }\n`);
    expect(p?.message).toBe('expected one of "hot", "warm", "cold", "external", got string "lukewarm"');
  });

  it('rejects duplicate service names', () => {
    const problems = problemsOf(
      `services:\n  - name: kv\n    command: [x]\n  - name: kv\n    command: [y]\n`,
    );
    expect(problems[0]).toMatchObject({ field: 'services[1].name', line: 4 });
    expect(problems[0]?.message).toMatch(/duplicate service name 'kv'/);
  });

  it('rejects port clashes between services and with a fixed port shared by primary and echo', () => {
    const problems = problemsOf(
      `services:\n  - name: a\n    command: [x]\n    echo: { count: 0 }\n    ports: { http: 8080 }\n  - name: b\n    command: [x]\n    routing: { listen: "127.0.0.1:8080" }\n  - name: c\n    command: [x]\n    ports: { http: 9000 }\n`,
    );
    expect(problems.map((p) => p.field)).toEqual(['services[1].routing.listen', 'services[2].ports.http']);
    expect(problems[0]?.message).toMatch(/port 8080 is already used by services\[0\]\.ports\.http/);
    expect(problems[1]?.message).toMatch(/each needs its own/);
  });

  it('rejects a state directory without {instance} shared by the primary and its echo, naming file, line and field', () => {
    const problems = problemsOf(
      `services:\n  - name: kv\n    command: [x]\n    stateDir: shared\n    echo: { count: 1 }\n`,
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file: 'u.yaml', line: 4, field: 'services[0].stateDir' });
    expect(problems[0]?.message).toMatch(/resolves to the same directory for kv-1 and kv-2/);
    expect(problems[0]?.message).toMatch(/\{instance\}/);
  });

  it('rejects a state directory told apart only by {role} or {port}: roles change on promotion, ports are reused', () => {
    for (const dir of ['state/{role}', 'state/{service}-{port}']) {
      const problems = problemsOf(`services:\n  - name: kv\n    command: [x]\n    stateDir: '${dir}'\n`);
      expect(problems.map((p) => p.field)).toEqual(['services[0].stateDir']);
    }
  });

  it('rejects a shared state directory reached only through scaling, a warm pool or shadows', () => {
    const scaled = problemsOf(
      `services:\n  - name: web\n    command: [x]\n    stateDir: one\n    echo: { count: 0 }\n    scaling: { max: 3 }\n`,
    );
    expect(scaled.map((p) => p.field)).toEqual(['services[0].stateDir']);
    const shadowed = problemsOf(
      `services:\n  - name: web\n    command: [x]\n    stateDir: one\n    echo: { count: 0 }\n    shadow: { onForecast: true }\n`,
    );
    expect(shadowed.map((p) => p.field)).toEqual(['services[0].stateDir']);
  });

  it('rejects state directories of two services that are the same or nested', () => {
    const problems = problemsOf(
      `services:\n  - name: a\n    command: [x]\n  - name: b\n    command: [x]\n    stateDir: state\n    echo: { count: 0 }\n  - name: c\n    command: [x]\n    stateDir: /srv/c\n    echo: { count: 0 }\n  - name: d\n    command: [x]\n    stateDir: /srv/c\n    echo: { count: 0 }\n`,
    );
    expect(problems.map((p) => p.field)).toEqual(['services[1].stateDir', 'services[3].stateDir']);
    expect(problems[0]?.message).toMatch(/a-1 of service 'a' are nested directories/);
    expect(problems[1]?.message).toMatch(/c-1 of service 'c' are the same directory/);
  });

  it('rejects a state directory that is or contains the data directory', () => {
    for (const dir of ['.', '..', '{dataDir}']) {
      const problems = problemsOf(
        `services:\n  - name: kv\n    command: [x]\n    stateDir: '${dir}'\n    echo: { count: 0 }\n`,
      );
      expect(problems.map((p) => p.message)).toEqual([expect.stringMatching(/contains the data directory/)]);
    }
  });

  it('accepts a fixed state directory for a service that only ever has one instance, and the default for all', () => {
    expect(() =>
      parseSpecText(
        `services:\n  - name: one\n    command: [x]\n    stateDir: /srv/one\n    echo: { count: 0 }\n  - name: kv\n    command: [x]\n    echo: { count: 2 }\n    shadow: { count: 1 }\n  - name: web\n    command: [x]\n    stateDir: 'web/{service}/{instance}'\n    scaling: { max: 4 }\n`,
        'u.yaml',
      ),
    ).not.toThrow();
  });

  it('rejects horizontal scaling of a service with hot echoes', () => {
    const problems = problemsOf(
      `services:\n  - name: a\n    command: [x]\n    echo: { mode: hot }\n    scaling: { max: 3 }\n`,
    );
    expect(problems.map((p) => p.field)).toEqual(['services[0].scaling.max']);
    expect(problems[0]?.message).toMatch(/hot echoes replay one primary's mutations/);
  });

  it('keeps one mutation in flight unless the spec declares the service keeps the pipelined contract', () => {
    const kv = parseSpecText(minimal, 'u.yaml').services[0]!;
    expect(kv.echo.mutations.order).toBe('serial');
    const piped = parseSpecText(
      `services:\n  - name: a\n    command: [x]\n    echo: { mode: hot, mutations: { order: pipelined } }\n`,
      'u.yaml',
    ).services[0]!;
    expect(piped.echo.mutations.order).toBe('pipelined');
  });

  it('rejects strict write-through with no echo, which would refuse every write', () => {
    const problems = problemsOf(
      `services:\n  - name: a\n    command: [x]\n    echo: { count: 0, mode: hot, mutations: { strict: true } }\n`,
    );
    expect(problems.map((p) => p.field)).toEqual(['services[0].echo.mutations.strict']);
  });

  it('rejects partitionBy with pipelined order, naming the field', () => {
    const problems = problemsOf(
      `services:\n  - name: a\n    command: [x]\n    echo: { mode: hot, mutations: { order: pipelined, partitionBy: { pathSegment: 1 } } }\n`,
    );
    expect(problems.map((p) => p.field)).toEqual(['services[0].echo.mutations.partitionBy']);
    expect(problems[0]?.message).toMatch(/drop partitionBy or use order: serial/);
  });

  it('takes echo.mutations.batch with pipelined order (max defaults to 64, inflight to 1, linger to 20 ms) and rejects it with serial order', () => {
    const batched = parseSpecText(
      `services:\n  - name: a\n    command: [x]\n    echo: { mode: hot, mutations: { order: pipelined, batch: { path: /_understudy/batch } } }\n`,
      'u.yaml',
    ).services[0]!;
    expect(batched.echo.mutations.batch).toEqual({
      path: '/_understudy/batch',
      max: 64,
      inflight: 1,
      linger: 20,
    });
    const lingering = parseSpecText(
      `services:\n  - name: a\n    command: [x]\n    echo: { mode: hot, consistency: async, mutations: { order: pipelined, batch: { path: /b, linger: 50ms } } }\n`,
      'u.yaml',
    ).services[0]!;
    expect(lingering.echo.mutations.batch?.linger).toBe(50);
    const problems = problemsOf(
      `services:\n  - name: a\n    command: [x]\n    echo: { mode: hot, mutations: { batch: { path: /b, max: 8 } } }\n`,
    );
    expect(problems.map((p) => p.field)).toEqual(['services[0].echo.mutations.batch']);
    expect(problems[0]?.message).toMatch(/batch needs order: pipelined/);
    expect(
      problemsOf(
        `services:\n  - name: a\n    command: [x]\n    echo: { mode: hot, mutations: { order: pipelined, batch: { path: b, max: 0 } } }\n`,
      )
        .map((p) => p.field)
        .sort(),
    ).toEqual(['services[0].echo.mutations.batch.max', 'services[0].echo.mutations.batch.path']);
  });

  it('rejects a migration whose provision threshold is above its switch threshold', () => {
    const problems = problemsOf(
      `services:\n  - name: a\n    command: [x]\n    migration: { auto: true, provisionThreshold: 90, switchThreshold: 80 }\n`,
    );
    expect(problems.map((p) => p.field)).toEqual(['services[0].migration.provisionThreshold']);
    expect(problems[0]?.message).toMatch(/must not exceed switchThreshold/);
  });

  it('rejects a fixed port on a service that scales to several serving instances', () => {
    const problems = problemsOf(
      `services:\n  - name: b\n    command: [x]\n    echo: { count: 0 }\n    ports: { http: 9000 }\n    scaling: { max: 2 }\n`,
    );
    expect(problems.map((p) => p.field)).toEqual(['services[0].ports.http']);
    expect(problems[0]?.message).toMatch(/up to 2 instances/);
  });

  it('rejects unknown placeholders and unknown port names', () => {
    const problems = problemsOf(
      `services:\n  - name: kv\n    command: [x, "{prot}"]\n    routing: { port: admin }\n`,
    );
    expect(problems.map((p) => p.message)).toEqual(
      expect.arrayContaining(["unknown port name 'admin'; ports are: http"]),
    );
    const p2 = problemsOf(`services:\n  - name: kv\n    command: [x, "{prot}"]\n`);
    expect(p2[0]).toMatchObject({ field: 'services[0].command[1]', message: 'unknown placeholder {prot}' });
  });

  it('rejects two health checks at once', () => {
    const [p] = problemsOf(
      `services:\n  - name: kv\n    command: [x]\n    health: { http: { path: / }, tcp: {} }\n`,
    );
    expect(p).toMatchObject({ field: 'services[0].health', message: 'choose one of http, tcp or exec' });
  });

  it('carries the stable error code', () => {
    try {
      parseSpecText('services: 3', 'u.yaml');
      expect.unreachable();
    } catch (err) {
      expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_CONFIG')).toBe(true);
    }
  });
});

describe('spec files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-config-'));

  it('says when the file does not exist', () => {
    expect(() => loadSpecFile(join(dir, 'nope.yaml'))).toThrow(/nope\.yaml:0:0: file not found/);
  });

  it('rejects a command that does not exist, naming it', () => {
    const f = join(dir, 'missing.yaml');
    writeFileSync(f, `services:\n  - name: kv\n    command: [definitely-not-a-program-xyz]\n`);
    expect(() => loadSpecFile(f)).toThrow(
      /missing\.yaml:3:15: services\[0\]\.command\[0\]: command 'definitely-not-a-program-xyz' not found on PATH/,
    );
  });

  it('rejects a program that is not executable', () => {
    writeFileSync(join(dir, 'plain.sh'), 'echo hi\n');
    const f = join(dir, 'noexec.yaml');
    writeFileSync(f, `services:\n  - name: kv\n    command: [./plain.sh]\n`);
    expect(() => loadSpecFile(f)).toThrow(/is not executable/);
  });

  it('rejects a working directory that does not exist', () => {
    const f = join(dir, 'cwd.yaml');
    writeFileSync(f, `services:\n  - name: kv\n    command: [node]\n    cwd: ./nowhere\n`);
    expect(() => loadSpecFile(f)).toThrow(/services\[0\]\.cwd: working directory .*nowhere does not exist/);
  });

  it('loads a valid file and resolves its directory', () => {
    const f = join(dir, 'ok.yaml');
    writeFileSync(f, minimal);
    const loaded = loadSpecFile(f);
    expect(loaded.dir).toBe(dir);
    expect(loaded.spec.services[0]?.name).toBe('kv');
  });
});
