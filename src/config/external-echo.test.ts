import { describe, expect, it } from 'vitest';
import { ConfigError, parseSpecText } from './load.js';

const spec = (echo: string, extra = ''): string =>
  `services:\n  - name: cache\n    command: [redis-server]\n    ports: { redis: 0 }\n    echo: ${echo}\n${extra}`;

function problemsOf(text: string): ConfigError['problems'] {
  try {
    parseSpecText(text, 'u.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('echo.mode external', () => {
  it('accepts exec and http hooks and applies the documented timeout and lag interval defaults', () => {
    const s = parseSpecText(
      spec(
        `{ mode: external, external: { follow: { exec: [./follow.sh] }, promote: { http: { path: /promote, port: redis }, timeout: 2s }, lag: { exec: [./lag.sh] } } }`,
      ),
      'u.yaml',
    ).services[0]!;
    expect(s.echo.mode).toBe('external');
    expect(s.echo.external?.timeout).toBe(5000);
    expect(s.echo.external?.lagInterval).toBe(1000);
    expect(s.echo.external?.promote).toEqual({ http: { path: '/promote', port: 'redis' }, timeout: 2000 });
    expect(s.echo.external?.follow?.exec).toEqual(['./follow.sh']);
  });

  it('says where the hooks are missing when the mode is external without an external block', () => {
    const problems = problemsOf(spec('{ mode: external }'));
    expect(problems.map((p) => p.field)).toEqual(['services[0].echo.external']);
    expect(problems[0]?.message).toMatch(/follow .*promote/);
  });

  it('requires a promote hook, naming the field', () => {
    const problems = problemsOf(spec('{ mode: external, external: { follow: { exec: [x] } } }'));
    expect(problems.some((p) => p.field === 'services[0].echo.external.promote')).toBe(true);
  });

  it('requires follow or prepare: an echo must be told whom to follow', () => {
    const problems = problemsOf(spec('{ mode: external, external: { promote: { exec: [x] } } }'));
    expect(problems.map((p) => p.field)).toEqual(['services[0].echo.external.follow']);
    expect(problems[0]?.message).toMatch(/whom to follow/);
  });

  it('accepts prepare alone in place of follow (an echo that must be set up before it starts)', () => {
    const s = parseSpecText(
      spec('{ mode: external, external: { prepare: { exec: [x] }, promote: { exec: [y] } } }'),
      'u.yaml',
    ).services[0]!;
    expect(s.echo.external?.prepare?.exec).toEqual(['x']);
  });

  it('rejects a hook that is both exec and http, or neither', () => {
    const both = problemsOf(
      spec(
        '{ mode: external, external: { follow: { exec: [x], http: { path: /f } }, promote: { exec: [y] } } }',
      ),
    );
    expect(both.map((p) => p.field)).toEqual(['services[0].echo.external.follow']);
    expect(both[0]?.message).toMatch(/exactly one of exec/);
    const neither = problemsOf(spec('{ mode: external, external: { follow: {}, promote: { exec: [y] } } }'));
    expect(neither.map((p) => p.field)).toEqual(['services[0].echo.external.follow']);
  });

  it('rejects an unknown hook name with a did-you-mean', () => {
    const problems = problemsOf(
      spec('{ mode: external, external: { folow: { exec: [x] }, promote: { exec: [y] } } }'),
    );
    expect(problems.some((p) => /unknown key 'folow'.*follow/.test(p.message))).toBe(true);
  });

  it('rejects an http hook on an unknown port name, naming the hook', () => {
    const problems = problemsOf(
      spec(
        '{ mode: external, external: { follow: { exec: [x] }, promote: { http: { path: /p, port: http } } } }',
      ),
    );
    expect(problems.map((p) => p.field)).toEqual(['services[0].echo.external.promote.http.port']);
    expect(problems[0]?.message).toMatch(/unknown port name 'http'.*redis/);
  });

  it('rejects an external block under another mode, and horizontal scaling of an external echo', () => {
    const wrongMode = problemsOf(
      spec('{ mode: warm, external: { follow: { exec: [x] }, promote: { exec: [y] } } }'),
    );
    expect(wrongMode.map((p) => p.field)).toEqual(['services[0].echo.external']);
    const scaled = problemsOf(
      spec(
        '{ mode: external, external: { follow: { exec: [x] }, promote: { exec: [y] } } }',
        '    scaling: { max: 2 }\n',
      ),
    );
    expect(scaled.map((p) => p.field)).toEqual(['services[0].scaling.max']);
  });

  it('rejects an empty argv and a bad timeout', () => {
    const problems = problemsOf(
      spec('{ mode: external, external: { follow: { exec: [] }, promote: { exec: [y], timeout: soon } } }'),
    );
    expect(problems.map((p) => p.field).sort()).toEqual([
      'services[0].echo.external.follow.exec',
      'services[0].echo.external.promote.timeout',
    ]);
  });
});
