/**
 * Compiles a glob to a RegExp over `/`-separated relative paths: `*` and `?` stay within a segment,
 * `**` spans segments, `{a,b}` alternates. A pattern without `/` matches the basename at any depth.
 */
export function globToRegExp(glob: string): RegExp {
  const pattern = glob.includes('/') ? glob.replace(/^\/+/, '') : `**/${glob}`;
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '{') {
      const end = pattern.indexOf('}', i);
      if (end < 0) re += '\\{';
      else {
        re +=
          '(?:' +
          pattern
            .slice(i + 1, end)
            .split(',')
            .map((s) => s.replace(/[.+^$()|[\]\\*?]/g, '\\$&'))
            .join('|') +
          ')';
        i = end;
      }
    } else re += c.replace(/[.+^$()|[\]\\{}]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
