/** Places in the control plane where a test may make the control process die. */
export type CrashPoint =
  | 'before-epoch-cas'
  | 'after-epoch-cas'
  /** During a rotation of the durable mutation log: the new segment's header written, not yet synced. */
  | 'mutation-log-rotate';

/**
 * Test-only fault injection: with `UNDERSTUDY_TEST_CRASH_AT=<point>` in its environment, the control
 * process kills itself with SIGKILL when it reaches that point — as an OOM kill or a power cut would —
 * so that end-to-end tests can check crash recovery with real processes. Does nothing otherwise.
 */
export function crashPoint(point: CrashPoint): void {
  if (process.env.UNDERSTUDY_TEST_CRASH_AT === point) process.kill(process.pid, 'SIGKILL');
}
