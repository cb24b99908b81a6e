import { describe, expect, it } from 'vitest';
import { accuracyOf } from '../../predict/index.js';
import { browserBase } from './dashboard.js';
import { formatForecast } from './forecast.js';

describe('formatForecast', () => {
  it('prints a row per window with MASE, coverage as a percentage, and the note', () => {
    const pairs = Array.from({ length: 10 }, (_, i) => ({
      at: i,
      forecast: 10,
      lower: 8,
      upper: 12,
      naive: 6,
      actual: i < 8 ? 11 : 14, // 8 of 10 inside
    }));
    const hour = accuracyOf(pairs, 3_600_000);
    const day = accuracyOf(pairs.slice(0, 3), 86_400_000);
    const out = formatForecast({ service: 'api', forecasting: true, at: 0, pending: 2, hour, day });
    const [header, h, d] = out.split('\n');
    expect(header).toMatch(/^WINDOW\s+RESOLVED\s+MASE\s+COVERAGE/);
    // MAE (8×1 + 2×4)/10 = 1.6; naive (8×5 + 2×8)/10 = 5.6; MASE 0.29.
    expect(h).toMatch(/^last hour\s+10\s+0\.29\s+80 %\s+1\.6\s+5\.6\s+beats the last-value forecast$/);
    expect(d).toMatch(/^last day\s+3\s+-\s+-\s+.*not enough data yet \(3 of 10 forecasts resolved\)$/);
    expect(out).toContain('2 forecast(s) not yet due');
  });

  it('says when a service makes no forecast', () => {
    expect(formatForecast({ service: 'kv', forecasting: false, note: 'no forecast here' })).toBe(
      'kv: no forecast here\n',
    );
  });
});

describe('browserBase', () => {
  it('reaches a wildcard listen on loopback and keeps a concrete address', () => {
    expect(browserBase('http://0.0.0.0:7070')).toBe('http://127.0.0.1:7070');
    expect(browserBase('http://127.0.0.1:41234')).toBe('http://127.0.0.1:41234');
  });
});
