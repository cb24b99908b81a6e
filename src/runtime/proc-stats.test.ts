import { describe, expect, it } from 'vitest';
import { listGroupProcesses, parseProcStat, readProcStat, sampleGroup } from './proc-stats.js';

describe('parseProcStat', () => {
  it('reads state, parent, group, CPU times and start time, even when comm holds spaces and parentheses', () => {
    const fields = [
      'S',
      '1',
      '4242',
      '4242',
      '0',
      '-1',
      '4194560',
      '100',
      '0',
      '0',
      '0',
      '37',
      '5',
      '11',
      '2',
      '20',
      '0',
      '1',
      '0',
      '185471',
    ];
    const stat = parseProcStat(`4242 (my (odd) prog) ${fields.join(' ')} 1000 200 rest`);
    expect(stat).toEqual({
      pid: 4242,
      comm: 'my (odd) prog',
      state: 'S',
      ppid: 1,
      pgrp: 4242,
      utime: 37,
      stime: 5,
      cutime: 11,
      cstime: 2,
      startTimeTicks: 185471,
    });
  });

  it('rejects text that is not a stat line', () => {
    expect(parseProcStat('garbage')).toBeUndefined();
  });
});

describe('reading /proc', () => {
  it('reads this process and finds it in its own process group', async () => {
    const self = await readProcStat(process.pid);
    expect(self?.pid).toBe(process.pid);
    expect(self?.startTimeTicks).toBeGreaterThan(0);
    const group = await listGroupProcesses(self?.pgrp ?? -1);
    expect(group.map((p) => p.pid)).toContain(process.pid);
  });

  it('returns nothing for a pid that does not exist', async () => {
    expect(await readProcStat(2 ** 22 + 12345)).toBeUndefined();
    expect(await listGroupProcesses(2 ** 22 + 12345)).toEqual([]);
  });

  it('samples the resident memory of a group', async () => {
    const self = await readProcStat(process.pid);
    const sample = await sampleGroup(self?.pgrp ?? -1);
    expect(sample.processCount).toBeGreaterThanOrEqual(1);
    expect(sample.rssBytes).toBeGreaterThan(10 * 1024 * 1024);
  });
});
