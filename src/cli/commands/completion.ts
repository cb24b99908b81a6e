import type { Command } from 'commander';
import { ApiClient } from '../../api/index.js';

/** What a command's first argument completes to. */
type ArgKind = 'services' | 'instances' | 'files' | 'none';

interface CommandShape {
  /** `status`, or `config validate` for a subcommand. */
  path: string;
  description: string;
  flags: string[];
  arg: ArgKind;
  subcommands: string[];
}

const argKind = (name: string | undefined): ArgKind =>
  name === 'service' ? 'services' : name === 'instance' ? 'instances' : name === 'file' ? 'files' : 'none';

/** The commands of `program` (visible ones), their flags and what their argument is. */
export function commandShapes(program: Command, prefix = ''): CommandShape[] {
  const out: CommandShape[] = [];
  for (const c of program.commands) {
    if ((c as unknown as { _hidden?: boolean })._hidden) continue;
    const path = prefix ? `${prefix} ${c.name()}` : c.name();
    const flags = c.options.flatMap((o) => [o.short, o.long].filter((f): f is string => !!f));
    out.push({
      path,
      description: c.description().split(/[;:.]/)[0] ?? '',
      flags: [...flags, '--help'],
      arg: argKind(c.registeredArguments[0]?.name()),
      subcommands: c.commands.map((s) => s.name()),
    });
    out.push(...commandShapes(c, path));
  }
  return out;
}

const words = (xs: readonly string[]): string => xs.join(' ');
const globalFlags = (program: Command): string[] => [
  ...program.options.flatMap((o) => [o.short, o.long].filter((f): f is string => !!f)),
  '--help',
];

/**
 * A bash completion script: commands, subcommands and flags from the program; service and instance
 * names from the running control plane (`understudy __names`, silent when none runs), honouring a
 * `-d/--data-dir` already typed.
 */
export function bashCompletion(program: Command): string {
  const shapes = commandShapes(program);
  const top = shapes.filter((s) => !s.path.includes(' ')).map((s) => s.path);
  const cases = shapes
    .map((s) => `    "${s.path}") flags="${words(s.flags)}"; subs="${words(s.subcommands)}"; arg=${s.arg} ;;`)
    .join('\n');
  return `# bash completion for understudy; load with: source <(understudy completion bash)
_understudy() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local cmdpath="" datadir=() i w flags="" subs="" arg=none
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in
      -d|--data-dir) datadir=(-d "\${COMP_WORDS[i+1]}"); i=$((i + 1)) ;;
      -*) ;;
      *) if [[ -z "$cmdpath" ]]; then cmdpath="$w"; elif [[ " $subs " == *" $w "* ]]; then cmdpath="$cmdpath $w"; fi ;;
    esac
    case "$cmdpath" in
${cases}
    esac
  done
  case "$prev" in -d|--data-dir|--trace|--plot) COMPREPLY=($(compgen -f -- "$cur")); return ;; esac
  if [[ -z "$cmdpath" ]]; then
    COMPREPLY=($(compgen -W "${words(top)} ${words(globalFlags(program))}" -- "$cur"))
    return
  fi
  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$flags" -- "$cur")); return; fi
  if [[ -n "$subs" ]]; then COMPREPLY=($(compgen -W "$subs" -- "$cur")); return; fi
  case "$arg" in
    services|instances) COMPREPLY=($(compgen -W "$(understudy "\${datadir[@]}" __names "$arg" 2>/dev/null)" -- "$cur")) ;;
    files) COMPREPLY=($(compgen -f -- "$cur")) ;;
  esac
}
complete -o default -F _understudy understudy
`;
}

/** A zsh completion script (native `compdef`): the same commands, flags and names as {@link bashCompletion}. */
export function zshCompletion(program: Command): string {
  const shapes = commandShapes(program);
  const describe = (s: CommandShape): string =>
    `'${s.path.split(' ').at(-1)}:${s.description.replace(/'/g, "'\\''").replace(/:/g, '\\:')}'`;
  const top = shapes.filter((s) => !s.path.includes(' '));
  const cases = shapes
    .map(
      (s) =>
        `    "${s.path}") flags=(${s.flags.join(' ')}); subs=(${s.subcommands.map((n) => describe(shapes.find((x) => x.path === `${s.path} ${n}`)!)).join(' ')}); arg=${s.arg} ;;`,
    )
    .join('\n');
  return `#compdef understudy
# zsh completion for understudy; load with: source <(understudy completion zsh)
_understudy() {
  local cmdpath="" i w arg=none
  local -a flags subs datadir cmds
  cmds=(${top.map(describe).join(' ')})
  for ((i = 2; i < CURRENT; i++)); do
    w="\${words[i]}"
    case "$w" in
      -d|--data-dir) datadir=(-d "\${words[i+1]}"); i=$((i + 1)) ;;
      -*) ;;
      *) if [[ -z "$cmdpath" ]]; then cmdpath="$w"; elif (( \${subs[(I)$w:*]} )); then cmdpath="$cmdpath $w"; fi ;;
    esac
    case "$cmdpath" in
${cases}
    esac
  done
  if [[ -z "$cmdpath" ]]; then
    if [[ "$PREFIX" == -* ]]; then compadd -- ${words(globalFlags(program))}; else _describe 'command' cmds; fi
    return
  fi
  if [[ "$PREFIX" == -* ]]; then compadd -- $flags; return; fi
  if (( \${#subs} )); then _describe 'subcommand' subs; return; fi
  case "$arg" in
    services|instances) compadd -- \${(f)"$(understudy $datadir __names $arg 2>/dev/null)"} ;;
    files) _files ;;
  esac
}
compdef _understudy understudy
`;
}

/** `understudy completion bash|zsh`: prints the script. */
export function runCompletion(program: Command, shell: 'bash' | 'zsh'): number {
  process.stdout.write(shell === 'bash' ? bashCompletion(program) : zshCompletion(program));
  return 0;
}

/**
 * `understudy __names services|instances` (hidden, for completion): the names known to the running
 * control plane, one a line; nothing (and exit 0) when none runs.
 */
export async function runNames(dataDir: string, kind: string): Promise<number> {
  try {
    const client = ApiClient.fromDataDir(dataDir);
    const names =
      kind === 'services'
        ? (await client.services()).map((s) => s.name)
        : (await client.instances()).filter((i) => i.phase !== 'stopped').map((i) => i.id);
    for (const n of names) process.stdout.write(n + '\n');
  } catch {
    // no control plane: no names
  }
  return 0;
}
