/**
 * The `ingot` command line: parses arguments and calls the public API.
 * Exit codes: 0 ok, 1 the operation failed, 2 usage error. Errors are one
 * line on stderr; `--debug` prints the stack.
 */
import { Command, CommanderError } from 'commander';
import { IngotError, UsageError } from '../errors.js';
type Register = (program: Command) => void;

/**
 * Command groups, loaded on demand: a command only pays for the modules of its
 * own group (openpgp, better-sqlite3, the solver… cost ~0.3 s of start-up that
 * `ingot convert` should not pay). Help and unknown commands load them all.
 */
const GROUPS: Record<string, () => Promise<Register>> = {
  rpm: async () => (await import('./rpm.js')).registerRpm,
  fs: async () => (await import('./fs.js')).registerFs,
  disk: async () => (await import('./disk.js')).registerDisk,
  repo: async () => (await import('./repo.js')).registerRepo,
  build: async () => (await import('./build.js')).registerBuild,
  boot: async () => (await import('./boot.js')).registerBoot,
  compose: async () => (await import('./compose.js')).registerCompose,
};
/** Top-level command → the group registering it. */
const COMMAND_GROUP: Record<string, string> = {
  rpm: 'rpm', mkfs: 'fs', ls: 'fs', cat: 'fs', convert: 'disk', info: 'disk', repo: 'repo', build: 'build', boot: 'boot', compose: 'compose',
};

export async function makeProgram(argv: string[] = []): Promise<Command> {
  const program = new Command();
  program
    .name('ingot')
    .description('Rootless disk-image assembler: image definition → RPMs → ext4/FAT/GPT → qcow2/vhd/vmdk/ova, boot-tested in qemu')
    .version('0.1.0')
    .option('--debug', 'print full stack traces on error')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const first = argv.find((a) => !a.startsWith('-'));
  const only = first !== undefined ? COMMAND_GROUP[first] : undefined;
  for (const name of only ? [only] : Object.keys(GROUPS)) (await GROUPS[name]!())(program);
  for (const c of program.commands) c.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = await makeProgram(argv);
  const debug = argv.includes('--debug');
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 2;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`ingot: ${e.message}\n`);
      return 2;
    }
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    // Operating-system errors (ENOENT, EACCES, ENOSPC…) are the user's situation, not a bug.
    const sys = e instanceof Error && typeof (e as NodeJS.ErrnoException).syscall === 'string';
    process.stderr.write(`ingot: ${e instanceof IngotError || sys ? '' : 'internal error: '}${msg}\n`);
    if (debug && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
