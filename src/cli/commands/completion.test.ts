import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../main.js';
import { bashCompletion, commandShapes, zshCompletion } from './completion.js';

/** Runs the bash script with `understudy` stubbed as a function printing names; returns COMPREPLY. */
function complete(line: string[]): string[] {
  const script = bashCompletion(buildProgram());
  const words = line.map((w) => `'${w}'`).join(' ');
  const r = spawnSync(
    'bash',
    [
      '-c',
      `${script}
understudy() { echo "args:$*" >&2; case "$*" in *"__names services") printf 'kv\\nweb\\n' ;; *"__names instances") printf 'kv-1\\nkv-2\\n' ;; esac; }
COMP_WORDS=(${words}); COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 )); _understudy; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

describe('shell completion', () => {
  it('bash: completes commands, subcommands and flags from the program', () => {
    expect(complete(['understudy', 'pa'])).toEqual(['pause']);
    expect(complete(['understudy', 'config', ''])).toEqual(['validate']);
    expect(complete(['understudy', 'failover', 'kv', '--'])).toEqual(
      expect.arrayContaining(['--to', '--reason', '--help']),
    );
    expect(complete(['understudy', 'status', '-'])).toEqual(expect.arrayContaining(['-w', '--watch', '-o']));
  });

  it('bash: completes service and instance names from the running control plane', () => {
    expect(complete(['understudy', 'pause', ''])).toEqual(['kv', 'web']);
    expect(complete(['understudy', '-d', '/tmp/x', 'history', 'w'])).toEqual(['web']);
    expect(complete(['understudy', 'restart', 'kv-'])).toEqual(['kv-1', 'kv-2']);
  });

  it('bash and zsh scripts parse; hidden commands are not offered', () => {
    expect(spawnSync('bash', ['-n'], { input: bashCompletion(buildProgram()) }).status).toBe(0);
    const zsh = zshCompletion(buildProgram());
    expect(zsh.startsWith('#compdef understudy\n')).toBe(true);
    expect(zsh).toContain("'pause:maintenance mode");
    expect(commandShapes(buildProgram()).map((s) => s.path)).not.toContain('__names');
    expect(commandShapes(buildProgram()).map((s) => s.path)).toContain('config validate');
  });
});
