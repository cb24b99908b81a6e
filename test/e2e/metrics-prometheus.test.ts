import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { Telemetry, type TelemetrySample } from '../../src/telemetry/index.js';
import { repoRoot, startUp, waitFor, type UpProcess } from './lib/cli.js';

// A real Prometheus scrapes a real `understudy up` with the data directory's token file. CI installs
// the Debian package `prometheus` (scripts/test.sh's UNDERSTUDY_APT_NEEDS); without it this is skipped.
const hasPrometheus = ['prometheus', 'promtool'].every(
  (cmd) => spawnSync(cmd, ['--version'], { encoding: 'utf8' }).status === 0,
);
if (!hasPrometheus) {
  console.warn(
    'metrics-prometheus: skipped, `prometheus` and `promtool` are not installed (apt-get install prometheus)',
  );
}

const work = mkdtempSync(join(tmpdir(), 'understudy-prom-'));
const dataDir = join(work, 'data');
let up: UpProcess | undefined;
let prometheus: ChildProcess | undefined;
let prometheusOut = '';
let promUrl = '';
let apiUrl = '';
let token = '';

/** A port free on 127.0.0.1 right now (Prometheus takes its listen address as a flag, not port 0). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

interface PromVector {
  metric: Record<string, string>;
  value: [number, string];
}

/** Runs an instant query against Prometheus's HTTP API. */
async function query(promql: string): Promise<PromVector[]> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await res.json()) as { status: string; data: { result: PromVector[] }; error?: string };
  if (body.status !== 'success') throw new Error(`query ${promql} failed: ${body.error}`);
  return body.data.result;
}

/** Polls a query until `ok` holds for its result; returns that result. */
async function queryUntil(promql: string, ok: (r: PromVector[]) => boolean): Promise<PromVector[]> {
  let last: PromVector[] = [];
  await waitFor(
    async () => ok((last = await query(promql).catch(() => []))),
    25_000,
    () => `${promql} -> ${JSON.stringify(last)}; prometheus said: ${prometheusOut.slice(-2000)}`,
  );
  return last;
}

/** The primary and echo ids of kv as the API reports them. */
async function instancesByRole(): Promise<Record<string, string>> {
  const res = await fetch(`${apiUrl}/v1/instances`, { headers: { authorization: `Bearer ${token}` } });
  const { instances } = (await res.json()) as { instances: { id: string; role: string; phase: string }[] };
  return Object.fromEntries(instances.filter((i) => i.phase !== 'stopped').map((i) => [i.role, i.id]));
}

async function scrape(auth = true): Promise<Response> {
  return fetch(`${apiUrl}/metrics`, auth ? { headers: { authorization: `Bearer ${token}` } } : {});
}

describe.skipIf(!hasPrometheus)('metrics scraped by a real Prometheus', () => {
  beforeAll(async () => {
    const spec = join(work, 'kv.yaml');
    const kvSpec = readFileSync(join(repoRoot, 'examples/kv/understudy.yaml'), 'utf8').replace(
      "command: [node, server.mjs, --port, '{port}', --state, '{stateDir}']",
      `command: [node, server.mjs, --port, '{port}', --state, '{stateDir}']\n    cwd: ${join(repoRoot, 'examples/kv')}`,
    );
    writeFileSync(spec, kvSpec);
    up = await startUp(spec, dataDir);
    apiUrl = (JSON.parse(readFileSync(join(dataDir, 'api.json'), 'utf8')) as { url: string }).url;
    token = readFileSync(join(dataDir, 'token'), 'utf8').trim();
    // Serving: the primary is running and the router sends traffic to it.
    await waitFor(
      async () => /understudy_serving_instances\{service="kv"\} 1\n/.test(await (await scrape()).text()),
      20_000,
      () => `kv did not start serving: ${up?.output()}`,
    );

    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    const promDir = join(work, 'prometheus');
    mkdirSync(promDir);
    const target = new URL(apiUrl).host;
    // The shipped example, pointed at this run: its token file and address, a 1 s interval, plus a
    // job without the token.
    const config = parse(readFileSync(join(repoRoot, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
      global: Record<string, string>;
      scrape_configs: Array<Record<string, unknown>>;
    };
    config.global = { scrape_interval: '1s', scrape_timeout: '1s' };
    const [job] = config.scrape_configs;
    if (!job) throw new Error('deploy/prometheus/prometheus.yml has no scrape config');
    Object.assign(job, {
      bearer_token_file: join(dataDir, 'token'),
      static_configs: [{ targets: [target] }],
    });
    config.scrape_configs.push({
      job_name: 'understudy-without-token',
      static_configs: [{ targets: [target] }],
    });
    writeFileSync(join(promDir, 'prometheus.yml'), stringify(config));
    const checked = spawnSync('promtool', ['check', 'config', join(promDir, 'prometheus.yml')], {
      encoding: 'utf8',
    });
    if (checked.status !== 0) throw new Error(`promtool check config: ${checked.stdout}${checked.stderr}`);
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${join(promDir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(promDir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout?.on('data', (c: Buffer) => (prometheusOut += c.toString()));
    prometheus.stderr?.on('data', (c: Buffer) => (prometheusOut += c.toString()));
    let exited = false;
    prometheus.on('exit', () => (exited = true));
    await waitFor(
      async () => {
        if (exited) throw new Error(`prometheus exited: ${prometheusOut}`);
        return (await fetch(`${promUrl}/-/ready`).catch(() => undefined))?.ok === true;
      },
      20_000,
      () => `prometheus did not become ready: ${prometheusOut}`,
    );
  });

  afterAll(async () => {
    prometheus?.kill('SIGKILL');
    if (up) {
      up.child.kill('SIGTERM');
      const stopped = await Promise.race([
        up.exited.then(() => true),
        new Promise((r) => setTimeout(() => r(false), 15_000).unref()),
      ]);
      if (!stopped) up.child.kill('SIGKILL');
    }
    rmSync(work, { recursive: true, force: true });
  });

  it('exposes text that promtool accepts', async () => {
    const res = await scrape();
    expect(res.status).toBe(200);
    const text = await res.text();
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it('is scraped with bearer_token_file, and refused to a scraper without the token', async () => {
    // Two scrapes of the authenticated job, each up.
    await queryUntil('count_over_time(up{job="understudy"}[1m])', (r) => Number(r[0]?.value[1]) >= 2);
    const upWith = await query('up{job="understudy"}');
    expect(upWith.map((r) => r.value[1])).toEqual(['1']);
    const upWithout = await queryUntil('up{job="understudy-without-token"}', (r) => r.length === 1);
    expect(upWithout.map((r) => r.value[1])).toEqual(['0']);
  });

  it('shows the primary and the echo of the service by role, with its own instance label (honor_labels)', async () => {
    const roles = await queryUntil(
      'understudy_instance_role{job="understudy",service="kv"}',
      (r) => r.length === 2,
    );
    const recorded = await instancesByRole();
    expect(Object.fromEntries(roles.map((r) => [r.metric.role, r.metric.instance]))).toEqual(recorded);
    const epoch = await query('understudy_service_epoch{job="understudy",service="kv"}');
    const res = await fetch(`${apiUrl}/v1/services/kv`, { headers: { authorization: `Bearer ${token}` } });
    expect(Number(epoch[0]?.value[1])).toBe(((await res.json()) as { epoch: number }).epoch);
  });

  it('counts the requests sent through the router, per service and per instance', async () => {
    const services = (await (
      await fetch(`${apiUrl}/v1/services`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as { services: { name: string; dataPlane: { address: string } }[] };
    const address = services.services.find((s) => s.name === 'kv')?.dataPlane.address;
    expect(address).toBeDefined();
    const before = Number(
      (await query('understudy_router_requests_total{job="understudy",service="kv"}'))[0]?.value[1] ?? 0,
    );
    const sent = 7;
    expect((await fetch(`http://${address}/kv/greeting`, { method: 'PUT', body: 'hello' })).status).toBe(200);
    for (let i = 1; i < sent; i++) {
      const res = await fetch(`http://${address}/kv/greeting`);
      expect(await res.text()).toContain('hello');
    }
    const total = await queryUntil(
      'understudy_router_requests_total{job="understudy",service="kv"}',
      (r) => Number(r[0]?.value[1]) >= before + sent,
    );
    expect(Number(total[0]?.value[1])).toBeGreaterThanOrEqual(sent);
    const toPrimary = await queryUntil(
      'understudy_router_backend_requests_total{job="understudy",service="kv"}',
      (r) => Number(r[0]?.value[1]) >= sent,
    );
    expect(toPrimary.map((r) => r.metric.instance)).toEqual([(await instancesByRole()).primary]);
    const latency = await query(
      'understudy_router_request_duration_seconds_count{job="understudy",service="kv"}',
    );
    expect(Number(latency[0]?.value[1])).toBeGreaterThanOrEqual(sent);
    // The mutation was replayed on the echo (hot, write-through).
    const applied = await queryUntil(
      'understudy_replication_applied_total{job="understudy",service="kv"}',
      (r) => Number(r[0]?.value[1]) >= 1,
    );
    expect(applied).toHaveLength(1);
  });

  it('answers every query of the Grafana dashboard (deploy/grafana/understudy.json)', async () => {
    const dashboard = JSON.parse(readFileSync(join(repoRoot, 'deploy/grafana/understudy.json'), 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => [p.title, t.expr] as const));
    expect(exprs.length).toBeGreaterThan(10);
    for (const [title, expr] of exprs) {
      const promql = expr.replaceAll('$__rate_interval', '1m').replaceAll('$service', '.*');
      await expect(query(promql), title).resolves.toBeInstanceOf(Array);
    }
    const roles = await query('understudy_instance_phase{service=~".*"} == 1');
    expect(roles.length).toBe(2);
  });

  it('records a failover: its outcome, its promotion time, and the new roles', async () => {
    const before = await instancesByRole();
    const res = await fetch(`${apiUrl}/v1/services/kv/failover`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'metrics test' }),
    });
    expect(res.status).toBe(200);
    const failovers = await queryUntil(
      'understudy_failovers_total{job="understudy",service="kv",kind="failover"}',
      (r) => r.length === 1,
    );
    expect(failovers.map((r) => [r.metric.outcome, r.value[1]])).toEqual([['ok', '1']]);
    const promotions = await query(
      'understudy_failover_promotion_seconds_count{job="understudy",service="kv",kind="failover"}',
    );
    expect(promotions.map((r) => r.value[1])).toEqual(['1']);
    await queryUntil(
      'understudy_instance_role{job="understudy",service="kv",role="primary"}',
      (r) => r.length === 1 && r[0]?.metric.instance === before.echo,
    );
  });

  it('records a crash failover with the time it took to detect the exit', async () => {
    // The deposed primary rejoins as an echo; once it runs as one, kill the new primary outright.
    await queryUntil(
      'understudy_instance_phase{job="understudy",service="kv",role="echo",phase="running"}',
      (r) => r.length === 1,
    );
    const res = await fetch(`${apiUrl}/v1/instances`, { headers: { authorization: `Bearer ${token}` } });
    const { instances } = (await res.json()) as { instances: { role: string; phase: string; pid: number }[] };
    const primary = instances.find((i) => i.role === 'primary' && i.phase === 'running');
    expect(primary?.pid).toBeGreaterThan(0);
    process.kill(primary?.pid ?? 0, 'SIGKILL');
    const detected = await queryUntil(
      'understudy_failover_detection_seconds_count{job="understudy",service="kv",cause="crash"}',
      (r) => r.length === 1,
    );
    expect(detected.map((r) => r.value[1])).toEqual(['1']);
    await queryUntil(
      'understudy_failovers_total{job="understudy",service="kv",kind="failover",outcome="ok"}',
      (r) => r[0]?.value[1] === '2',
    );
  });
});

/** A sample in which every collected metric has a series: TCP and HTTP routers, hot and warm echoes, scaling. */
const everything: TelemetrySample = {
  eventLoopDelay: { p50: 0.001, p99: 0.004, max: 0.02 },
  services: [
    {
      service: 'web',
      epoch: 2,
      degraded: false,
      desired: { primary: 2, echo: 1, shadow: 1 },
      serving: 2,
      warmPool: 1,
      instances: [
        { instance: 'web-1', role: 'primary', phase: 'running', epoch: 2, healthy: true, readiness: 12 },
        { instance: 'web-2', role: 'echo', phase: 'running', epoch: 0 },
      ],
      router: {
        mode: 'tcp',
        waiting: 0,
        requests: 3,
        inFlight: 1,
        unavailable: 0,
        retried: 0,
        errors: { connect: 0, reset: 1 },
        bytes: { in: 10, out: 20 },
        mirror: { sent: 1, dropped: 0, failed: 0, skipped: 0 },
        warmReads: { sent: 4, completed: 3, dropped: 0, failed: 1 },
        backends: [
          {
            instance: 'web-1',
            requests: 3,
            errors: 0,
            inFlight: 1,
            latency: { bounds: [0.001, 0.01], counts: [1, 2, 0], sum: 0.01, count: 3 },
          },
        ],
      },
      externalEchoes: [{ instance: 'web-2', lagBytes: 4096 }, { instance: 'web-3' }],
      fileSync: [
        {
          instance: 'web-2',
          connected: true,
          lagSeconds: 0.1,
          lagBytes: 4096,
          wireBytes: 1e6,
          changeRateBytes: 100,
          compressionRatio: 2,
          errors: 0,
        },
      ],
      scaling: {
        load: 10,
        capacity: 50,
        target: 0.6,
        forecast: { mean: 12, lower: 8, upper: 16, horizonSeconds: 60 },
        confidence: 0.7,
        shadowDelta: 0.05,
      },
    },
    {
      service: 'kv',
      epoch: 1,
      degraded: true,
      desired: { primary: 1, echo: 1, shadow: 0 },
      serving: 1,
      warmPool: 1,
      instances: [{ instance: 'kv-1', role: 'primary', phase: 'running', epoch: 1 }],
      replication: {
        lastSeq: 5,
        strictRefusals: 0,
        echoes: [{ instance: 'kv-2', inSync: true, lagMutations: 0, lagSeconds: 0, applied: 5, failures: 0 }],
      },
    },
  ],
};

describe.skipIf(!hasPrometheus)('the metrics exposition', () => {
  it('passes promtool check metrics with every metric present', async () => {
    const t = new Telemetry();
    t.collectFrom(() => everything);
    t.promotion({
      service: 'kv',
      kind: 'failover',
      cause: 'crash',
      outcome: 'ok',
      detectionSeconds: 0.01,
      promotionSeconds: 0.2,
    });
    t.decision({ service: 'web', kind: 'scale-out', scalingApplied: true });
    const { body } = await t.exposition();
    // Every family has at least one series, so promtool lints them all.
    const missing = t.describe().filter((m) => !new RegExp(`^${m.name}(_bucket)?[{ ]`, 'm').test(body));
    expect(missing.map((m) => m.name)).toEqual([]);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
  });
});
