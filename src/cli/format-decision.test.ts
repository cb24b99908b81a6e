import { describe, expect, it } from 'vitest';
import type { ControlDecision } from '../control/index.js';
import { formatDecision, formatOutcome } from './format-decision.js';

const base: ControlDecision = {
  seq: 7,
  at: Date.UTC(2026, 0, 1, 12, 30, 15, 250),
  kind: 'start',
  service: 'kv',
  instance: 'kv-1',
  what: 'start primary kv-1',
  why: "service 'kv' has no primary",
  inputs: {},
  outcome: { status: 'ok', detail: 'pid 42' },
};

describe('formatDecision', () => {
  it('shows the status and its detail', () => {
    expect(formatDecision(base)).toBe(
      "12:30:15.250 start     kv-1       start primary kv-1 — service 'kv' has no primary [ok: pid 42]",
    );
    expect(formatOutcome({ status: 'failed', detail: 'disk full' })).toBe('failed: disk full');
    expect(formatOutcome({ status: 'pending' })).toBe('pending');
  });

  it('leaves out the outcome of an observation (status recorded)', () => {
    expect(formatDecision({ ...base, outcome: { status: 'recorded' } })).not.toContain('[');
  });
});
