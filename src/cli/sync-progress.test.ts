import { describe, expect, it } from 'vitest';
import type { EchoFileSyncView } from '../agent/index.js';
import type { ServiceView } from '../control/index.js';
import { initialSyncLines, progressBar } from './sync-progress.js';

describe('initial sync progress', () => {
  it('draws a bar proportional to the bytes copied', () => {
    expect(progressBar(0, 100)).toBe(`[${'.'.repeat(30)}]   0 %`);
    expect(progressBar(50, 100)).toBe(`[${'#'.repeat(15)}${'.'.repeat(15)}]  50 %`);
    expect(progressBar(200, 100)).toBe(`[${'#'.repeat(30)}] 100 %`);
  });

  it('lists only echoes whose initial copy is under way', () => {
    const echo = (id: string, initialSync: EchoFileSyncView['initialSync']) => ({
      echo: id,
      connected: true,
      lagSeconds: 0,
      lagBytes: 0,
      changeRateBytesPerSec: 0,
      changeRateFilesPerSec: 0,
      wireBytes: 0,
      compressionRatio: 1,
      lastAppliedSeq: 0,
      errors: 0,
      initialSync,
    });
    const services = [
      {
        name: 'db',
        fileSync: [
          echo('db-2', { doneBytes: 1024 * 1024, totalBytes: 4 * 1024 * 1024 }),
          echo('db-3', null),
          echo('db-4', {
            doneBytes: 0,
            sentBytes: 2 * 1024 * 1024,
            totalBytes: 4 * 1024 * 1024,
            doneFiles: 0,
            totalFiles: 7,
          }),
        ],
      },
    ] as unknown as ServiceView[];
    expect(initialSyncLines(services)).toEqual([
      `initial copy db → db-2 ${progressBar(1, 4)} 1.0 MiB of 4.0 MiB sent, 1.0 MiB applied`,
      // Sent moves per data frame, before the batch is applied.
      `initial copy db → db-4 ${progressBar(2, 4)} 2.0 MiB of 4.0 MiB sent, 0 B applied, 0/7 files applied`,
    ]);
  });
});
