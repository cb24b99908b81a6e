export { main, buildProgram, durationFlag } from './main.js';
export type { GlobalOptions } from './main.js';
export { startEmbedded } from './embedded.js';
export type { Embedded, EmbeddedOptions } from './embedded.js';
export { ExitCode, exitCodeFor, reportError } from './exit-codes.js';
