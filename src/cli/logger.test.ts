import { describe, expect, it } from 'vitest';
import type { ControlDecision } from '../control/index.js';
import { formatDecision } from './format-decision.js';
import { createLogger, logDecision, resolveLogFormat } from './logger.js';

function capture(isTTY = false): { lines: string[]; stream: { write(l: string): void; isTTY: boolean } } {
  const lines: string[] = [];
  return { lines, stream: { write: (l) => lines.push(...l.split('\n').filter(Boolean)), isTTY } };
}

const decision = (over: Partial<ControlDecision> = {}): ControlDecision => ({
  seq: 7,
  at: Date.UTC(2026, 0, 2, 3, 4, 5, 600),
  kind: 'failover',
  service: 'kv',
  instance: 'kv-1',
  what: 'promote kv-2 in place of kv-1',
  why: 'crash: primary exited (code 1)',
  inputs: { cause: 'crash', epoch: 3, from: 'kv-1', to: 'kv-2' },
  outcome: { status: 'ok', detail: 'kv-2 serves at epoch 3' },
  ...over,
});

describe('decision log records', () => {
  it('JSON: one parseable record per decision, carrying every field of the decision', () => {
    const { lines, stream } = capture();
    const log = createLogger({ format: 'json', stream });
    logDecision(log, decision(), 3);
    logDecision(log, decision({ seq: 8, kind: 'restart', what: 'restart echo kv-2', inputs: {} }), 3);
    expect(lines).toHaveLength(2);
    const [first, second] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(first).toMatchObject({
      level: 'info',
      seq: 7,
      kind: 'failover',
      service: 'kv',
      instance: 'kv-1',
      what: 'promote kv-2 in place of kv-1',
      why: 'crash: primary exited (code 1)',
      inputs: { cause: 'crash', epoch: 3, from: 'kv-1', to: 'kv-2' },
      outcome: { status: 'ok', detail: 'kv-2 serves at epoch 3' },
      epoch: 3,
      decidedAt: '2026-01-02T03:04:05.600Z',
      msg: 'failover: promote kv-2 in place of kv-1',
    });
    expect(typeof first?.time).toBe('string');
    expect(second).toMatchObject({ seq: 8, kind: 'restart' });
  });

  it('never writes env values, tokens or authorization headers, at any depth they appear', () => {
    const { lines, stream } = capture();
    const log = createLogger({ format: 'json', stream });
    logDecision(
      log,
      decision({
        inputs: {
          env: { DB_PASSWORD: 'hunter2' },
          spec: { env: { API_KEY: 'sk-live-123' } },
          token: 'tok-abc',
          request: { headers: { authorization: 'Bearer tok-def' } },
        },
      }),
    );
    log.info({ token: 'tok-ghi' }, 'api started');
    const text = lines.join('\n');
    for (const secret of ['hunter2', 'sk-live-123', 'tok-abc', 'tok-def', 'tok-ghi'])
      expect(text).not.toContain(secret);
    const rec = JSON.parse(lines[0]!) as { inputs: { env: unknown; spec: { env: unknown }; token: unknown } };
    expect(rec.inputs.env).toBe('[redacted]');
    expect(rec.inputs.spec.env).toBe('[redacted]');
    expect(rec.inputs.token).toBe('[redacted]');
  });

  it('text: the one-line decision format people read, and understudy: lines for the rest', () => {
    const { lines, stream } = capture();
    const log = createLogger({ format: 'text', stream });
    logDecision(log, decision());
    log.info('stopping (SIGTERM)');
    log.warn('reload refused');
    expect(lines).toEqual([
      formatDecision(decision()),
      'understudy: stopping (SIGTERM)',
      'understudy: warn: reload refused',
    ]);
  });

  it('drops records below the level; a failed decision is a warning', () => {
    const { lines, stream } = capture();
    const log = createLogger({ format: 'json', level: 'warn', stream });
    logDecision(log, decision());
    logDecision(log, decision({ seq: 9, outcome: { status: 'failed', detail: 'no echo' } }));
    expect(lines.map((l) => (JSON.parse(l) as { seq: number; level: string }).seq)).toEqual([9]);
    expect((JSON.parse(lines[0]!) as { level: string }).level).toBe('warn');
  });

  it('defaults to text on a terminal and JSON when piped; an explicit format wins', () => {
    expect(resolveLogFormat(undefined, true)).toBe('text');
    expect(resolveLogFormat(undefined, false)).toBe('json');
    expect(resolveLogFormat(undefined, undefined)).toBe('json');
    expect(resolveLogFormat('json', true)).toBe('json');
    const tty = capture(true);
    logDecision(createLogger({ stream: tty.stream }), decision());
    expect(tty.lines).toEqual([formatDecision(decision())]);
  });
});
