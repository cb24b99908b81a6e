import { describe, expect, it } from 'vitest';
import {
  hourOf,
  newProfile,
  observeDependencies,
  observeUsage,
  parseProfile,
  profileHours,
  resolveProfileOptions,
} from './profile.js';

const options = resolveProfileOptions({ minSamples: 3, maxDependencies: 4 });
const at = (hour: number, minute = 0): number => Date.UTC(2026, 11, 7, hour, minute);

describe('service profile', () => {
  it('keeps samples apart by hour of day (UTC) and reports percentiles per hour', () => {
    const p = newProfile('api', { cpu: 1 }, at(0));
    for (let i = 1; i <= 10; i++) observeUsage(p, { cpu: i / 10, memory: 100e6 }, at(9, i), options);
    observeUsage(p, { cpu: 0.05 }, at(21), options);
    const hours = profileHours(p, options);
    expect(hours.map((h) => h.hour)).toEqual([9, 21]);
    const nine = hours[0];
    expect(nine?.samples).toBe(10);
    expect(nine?.enough).toBe(true);
    expect(nine?.resources.cpu?.max).toBe(1);
    expect(nine?.resources.cpu?.p50).toBeGreaterThanOrEqual(0.5);
    expect(nine?.resources.cpu?.p50).toBeLessThan(0.56);
    expect(hours[1]?.enough).toBe(false);
    expect(hourOf(at(21))).toBe(21);
  });

  it('records only the resources a sample has (disk and network are absent until measured)', () => {
    const p = newProfile('api', {}, at(0));
    observeUsage(p, { cpu: 0.2, memory: 5e6 }, at(3), options);
    expect(Object.keys(profileHours(p, options)[0]?.resources ?? {}).sort()).toEqual(['cpu', 'memory']);
  });

  it('merges dependencies, says what was new, and keeps each list bounded to its newest entries', () => {
    const p = newProfile('api', {}, at(0));
    const first = observeDependencies(
      p,
      { listening: [8080], connected: ['127.0.0.1:5432'], libraries: ['/lib/libc.so.6'], files: ['/data/a'] },
      at(1),
      options,
    );
    expect(first).toEqual({
      listening: ['8080'],
      connected: ['127.0.0.1:5432'],
      libraries: ['/lib/libc.so.6'],
      files: ['/data/a'],
    });
    const again = observeDependencies(
      p,
      { listening: [8080], connected: [], libraries: ['/lib/libc.so.6'], files: ['/data/a'] },
      at(2),
      options,
    );
    expect(again).toEqual({});
    observeDependencies(
      p,
      { listening: [], connected: [], libraries: [], files: ['/b', '/c', '/d', '/e'] },
      at(3),
      options,
    );
    expect(p.dependencies.files).toEqual(['/b', '/c', '/d', '/e']);
    expect(p.dependencies.observedAt).toBe(at(3));
  });

  it('round-trips through its stored JSON and refuses a damaged record', () => {
    const p = newProfile('api', { cpu: 0.5 }, at(0));
    observeUsage(p, { cpu: 0.3 }, at(5), options);
    expect(parseProfile(JSON.stringify(p))).toEqual(p);
    expect(parseProfile('{"service":"api"}')).toBeUndefined();
    expect(parseProfile('not json')).toBeUndefined();
    expect(parseProfile(JSON.stringify({ ...p, hours: [{ cpu: { n: 'x' } }] }))).toBeUndefined();
    expect(parseProfile(JSON.stringify({ ...p, startup: { cold: 5 } }))).toBeUndefined();
  });
});
