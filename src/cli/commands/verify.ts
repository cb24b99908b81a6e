import { ApiClient } from '../../api/index.js';
import { ErrorCode, UnderstudyError } from '../../errors/index.js';
import { verifyTrees, type TreeDifference } from '../../sync/index.js';
import { ExitCode, reportError } from '../exit-codes.js';

export interface VerifyOptions {
  dataDir: string;
  service: string;
  output: 'table' | 'json';
}

/**
 * `understudy verify <service>`: compares the primary's state directory with every echo's by content
 * hash, type, mode and link target. Exit 0 when identical, 1 when anything differs. An echo still
 * catching up differs by what it has not applied yet; run it when writes are quiet.
 */
export async function runVerify(options: VerifyOptions): Promise<number> {
  try {
    const svc = (await ApiClient.fromDataDir(options.dataDir).services()).find(
      (s) => s.name === options.service,
    );
    if (!svc) throw new UnderstudyError(ErrorCode.NotFound, `no service named '${options.service}'`);
    const primary = svc.instances.find((i) => i.role === 'primary');
    if (!primary)
      throw new UnderstudyError(ErrorCode.NotFound, `service '${options.service}' has no primary`);
    const echoes = svc.instances.filter((i) => i.role === 'echo' && i.phase !== 'failed');
    const results: { echo: string; differences: TreeDifference[] }[] = [];
    for (const echo of echoes)
      results.push({ echo: echo.id, differences: await verifyTrees(primary.stateDir, echo.stateDir) });
    const differing = results.filter((r) => r.differences.length > 0);
    if (options.output === 'json') {
      process.stdout.write(
        JSON.stringify({
          service: svc.name,
          primary: primary.id,
          identical: differing.length === 0,
          echoes: results,
        }) + '\n',
      );
    } else {
      for (const r of results) {
        process.stdout.write(
          `${r.echo}: ${r.differences.length === 0 ? `identical to ${primary.id}` : `${r.differences.length} difference(s) from ${primary.id}`}\n`,
        );
        for (const d of r.differences.slice(0, 50)) {
          process.stdout.write(
            `  ${d.kind.padEnd(14)} ${d.path}${d.a || d.b ? `  (primary: ${d.a ?? '-'}, echo: ${d.b ?? '-'})` : ''}\n`,
          );
        }
        if (r.differences.length > 50) process.stdout.write(`  … and ${r.differences.length - 50} more\n`);
      }
      if (results.length === 0) process.stdout.write(`${svc.name} has no echo to verify\n`);
    }
    return differing.length === 0 ? ExitCode.Ok : ExitCode.Failure;
  } catch (err) {
    return reportError(err);
  }
}
