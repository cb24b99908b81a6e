import type { ServiceView } from '../control/index.js';
import { formatBytes } from './output.js';

const WIDTH = 30;

/** A progress bar: `[##########....................]  33 %`. */
export function progressBar(done: number, total: number): string {
  const f = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(f * WIDTH);
  return `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${String(Math.round(f * 100)).padStart(3)} %`;
}

/**
 * One line per echo whose initial (full) copy is under way, for `understudy up`: which service and
 * echo, a bar, and bytes copied of the total. Empty when no initial copy is running.
 */
export function initialSyncLines(services: readonly ServiceView[]): string[] {
  const lines: string[] = [];
  for (const svc of services) {
    for (const f of svc.fileSync ?? []) {
      if (!f.initialSync || f.initialSync.totalBytes === 0) continue;
      const { doneBytes, totalBytes, sentBytes, doneFiles, totalFiles } = f.initialSync;
      // The bar follows the bytes sent (it moves per data frame); the text says what is applied.
      const sent = Math.max(doneBytes, sentBytes ?? 0);
      const files = totalFiles !== undefined ? `, ${doneFiles ?? 0}/${totalFiles} files applied` : '';
      lines.push(
        `initial copy ${svc.name} → ${f.echo} ${progressBar(sent, totalBytes)} ${formatBytes(sent)} of ${formatBytes(totalBytes)} sent, ${formatBytes(doneBytes)} applied${files}`,
      );
    }
  }
  return lines;
}
