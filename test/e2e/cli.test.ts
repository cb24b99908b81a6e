import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  isAlive,
  processesWithEnv,
  repoRoot,
  runCli,
  runCliAsync,
  startUp,
  waitFor,
  type UpProcess,
} from './lib/cli.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-cli-'));
const kvDir = join(repoRoot, 'examples/kv');
const running: UpProcess[] = [];

afterAll(() => {
  for (const up of running) up.child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

/** A kv spec whose instances carry a unique tag in their environment, so a test can count them. */
function kvSpec(tag: string, extra = ''): string {
  const file = join(work, `kv-${tag}.yaml`);
  writeFileSync(
    file,
    `services:
  - name: kv
    command: [node, server.mjs, --port, '{port}', --state, '{stateDir}']
    cwd: ${kvDir}
    env: { US_TEST_TAG: ${tag} }
    health: { http: { path: /healthz }, interval: 200ms, timeout: 200ms, failureThreshold: 2 }
    echo: { count: 1 }
    restart: { policy: on-failure, backoff: 50ms }
${extra}`,
  );
  return file;
}

interface StatusJson {
  controlPlane: { pid: number };
  services: {
    name: string;
    instances: {
      id: string;
      role: string;
      phase: string;
      pid: number;
      ports: Record<string, number>;
      stateDir: string;
      restarts: number[];
    }[];
  }[];
}

function status(dataDir: string): StatusJson {
  const r = runCli(['status', '-o', 'json', '-d', dataDir]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as StatusJson;
}

describe('the understudy command', () => {
  it('prints its version and help for every command', async () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    const commands = ['up', 'status', 'down', 'logs', 'events', 'demo'];
    // Independent commands, run at once (each one's time is mostly the CLI loading).
    const [version, ...helps] = await Promise.all([
      runCliAsync(['--version']),
      ...commands.map((cmd) => runCliAsync([cmd, '--help'])),
    ]);
    expect(version.stdout.trim()).toBe(pkg.version);
    commands.forEach((cmd, i) => {
      expect(helps[i]?.code, cmd).toBe(0);
      expect(helps[i]?.stdout, cmd).toMatch(new RegExp(`Usage: understudy ${cmd}`));
    });
  });

  it('exits 2 with a clear message on an unknown command or a bad flag value', async () => {
    const [unknown, badFlag, badDuration] = await Promise.all([
      runCliAsync(['upp']),
      runCliAsync(['status', '-o', 'xml']),
      runCliAsync(['demo', '--duration', 'soon']),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'upp'/);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/Allowed choices are table, json/);
    expect(badDuration.code).toBe(2);
    expect(badDuration.stderr).toMatch(/expected a duration/);
  });

  it('says no control plane runs instead of failing obscurely', () => {
    const r = runCli(['status', '-d', join(work, 'nothing-here')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^understudy: no control plane is running with data directory .*nothing-here/);
  });
});

// Each case has its own spec file, data directory and tag: they run at once.
describe.concurrent('understudy up with bad input', () => {
  const cases: [string, (tag: string) => string, RegExp][] = [
    ['malformed YAML', () => 'services:\n  - name: kv\n    command: [node\n', /invalid YAML/],
    [
      'a wrong type',
      (tag) => kvSpec(tag, '    scaling: { max: many }\n'),
      /services\[0\]\.scaling\.max: expected number, got string "many"/,
    ],
    [
      'an unknown key',
      (tag) => kvSpec(tag, '    helth: {}\n'),
      /services\[0\]\.helth: unknown key 'helth'; did you mean 'health'\?/,
    ],
    [
      'duplicate service names',
      (tag) =>
        readFileSync(kvSpec(tag), 'utf8') + readFileSync(kvSpec(tag), 'utf8').replace('services:\n', ''),
      /duplicate service name 'kv'/,
    ],
    [
      'a port clash',
      (tag) => kvSpec(tag, "    routing: { listen: '127.0.0.1:7001' }\napi: { listen: '127.0.0.1:7001' }\n"),
      /port 7001 is already used by api\.listen/,
    ],
    [
      'a command that does not exist',
      (tag) => readFileSync(kvSpec(tag), 'utf8').replace('[node,', '[no-such-program-understudy,'),
      /command 'no-such-program-understudy' not found on PATH/,
    ],
    [
      'a state directory that is not writable',
      (tag) => kvSpec(tag, `    stateDir: ${join(work, 'a-file')}/{instance}\n`),
      /state directory of service 'kv'.*is not a writable directory/,
    ],
  ];
  writeFileSync(join(work, 'a-file'), 'not a directory');

  for (const [what, make, expected] of cases) {
    it(`rejects ${what} with exit 2 and starts nothing`, async ({ expect }) => {
      const tag = randomUUID();
      const text = make(tag);
      const file = text.endsWith('.yaml') ? text : join(work, `${tag}.yaml`);
      if (file !== text) writeFileSync(file, text);
      const dataDir = join(work, `data-${tag}`);
      const r = await runCliAsync(['up', file, '-d', dataDir]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(expected);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(r.stdout).not.toMatch(/running; API/);
      expect(processesWithEnv('US_TEST_TAG', tag)).toEqual([]);
    });
  }
});

/** `understudy up` with the kv spec, once its primary and echo both run. */
async function upWithKv(): Promise<{ tag: string; dataDir: string; up: UpProcess }> {
  const tag = randomUUID();
  const dataDir = join(work, `data-${tag}`);
  const up = await startUp(kvSpec(tag), dataDir);
  running.push(up);
  await waitFor(
    () => status(dataDir).services[0]?.instances.filter((i) => i.phase === 'running').length === 2,
    15_000,
    up.output,
  );
  return { tag, dataDir, up };
}

describe('understudy up with the kv example', () => {
  it('runs a primary and an echo, lists them, shows logs and events, and stops them all on down', async () => {
    const { tag, dataDir, up } = await upWithKv();
    const { services, controlPlane } = status(dataDir);
    expect(controlPlane.pid).toBe(up.child.pid);
    const kv = services.find((s) => s.name === 'kv');
    expect(kv?.instances.map((i) => i.role).sort()).toEqual(['echo', 'primary']);
    for (const inst of kv?.instances ?? []) {
      expect(isAlive(inst.pid)).toBe(true);
      expect(inst.ports.http).toBeGreaterThan(0);
      expect(statSync(inst.stateDir).isDirectory()).toBe(true);
      expect(inst.stateDir.startsWith(dataDir)).toBe(true);
    }
    const primary = kv?.instances.find((i) => i.role === 'primary');
    const res = await fetch(`http://127.0.0.1:${primary?.ports.http}/kv/hello`, {
      method: 'PUT',
      body: 'world',
    });
    expect(res.status).toBe(200);
    expect(readFileSync(join(primary?.stateDir ?? '', 'kv.log'), 'utf8')).toMatch(
      /"key":"hello","value":"world"/,
    );

    const table = runCli(['status', '-d', dataDir]);
    expect(table.stdout).toMatch(/^SERVICE\s+INSTANCE\s+ROLE\s+PHASE\s+PID/);
    expect(table.stdout).toMatch(new RegExp(`kv\\s+${primary?.id}\\s+primary\\s+running\\s+${primary?.pid}`));

    const logs = runCli(['logs', primary?.id ?? '', '-d', dataDir]);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toMatch(/kv listening on http:\/\/127\.0\.0\.1:\d+/);

    const events = runCli(['events', '-o', 'json', '-d', dataDir]);
    const kinds = events.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { kind: string }).kind);
    expect(kinds.filter((k) => k === 'start')).toHaveLength(2);
    expect(kinds).toContain('healthy');

    const down = runCli(['down', '-d', dataDir]);
    expect(down.code).toBe(0);
    expect(await up.exited).toBe(0);
    expect(processesWithEnv('US_TEST_TAG', tag)).toEqual([]);
    expect(existsSync(join(dataDir, 'api.json'))).toBe(false);
    expect(statSync(join(dataDir, 'token')).mode & 0o777).toBe(0o600);
  });

  it('notices an echo killed with SIGKILL at once, records it, and restarts it per policy', async () => {
    const { tag, dataDir, up } = await upWithKv();
    const before = status(dataDir).services[0]?.instances.find((i) => i.role === 'echo');
    process.kill(before?.pid ?? 0, 'SIGKILL');
    await waitFor(
      () => {
        const now = status(dataDir).services[0]?.instances.find((i) => i.id === before?.id);
        return now?.phase === 'running' && now.pid !== before?.pid;
      },
      10_000,
      up.output,
    );
    const events = runCli(['events', '-o', 'json', '-d', dataDir])
      .stdout.trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            kind: string;
            instance?: string;
            inputs: { exit?: { signal: string }; detectionMs?: number };
          },
      );
    const exited = events.find((e) => e.kind === 'exited' && e.instance === before?.id);
    expect(exited?.inputs.exit?.signal).toBe('SIGKILL');
    // Noticed within one health interval (200 ms): exit events come from the runtime, not from polling.
    expect(exited?.inputs.detectionMs).toBeLessThanOrEqual(200);
    expect(events.some((e) => e.kind === 'restart' && e.instance === before?.id)).toBe(true);
    up.child.kill('SIGINT');
    expect(await up.exited).toBe(0);
    expect(processesWithEnv('US_TEST_TAG', tag)).toEqual([]);
  });

  it('leaves no process behind when interrupted at any point of its life', async () => {
    for (const delayMs of [0, 150, 400, 900, 2000]) {
      const tag = randomUUID();
      const dataDir = join(work, `data-${tag}`);
      const { spawn } = await import('node:child_process');
      const child = spawn(
        process.execPath,
        [join(repoRoot, 'bin/understudy.js'), 'up', kvSpec(tag), '-d', dataDir],
        { stdio: 'ignore' },
      );
      const exited = new Promise<string>((resolve) =>
        child.on('exit', (code, signal) => resolve(signal ?? String(code))),
      );
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill('SIGINT');
      // Before its handler is installed node dies of the signal, before it could start anything.
      expect(['0', 'SIGINT'], `interrupted after ${delayMs} ms`).toContain(await exited);
      expect(processesWithEnv('US_TEST_TAG', tag), `interrupted after ${delayMs} ms`).toEqual([]);
    }
  });
});
