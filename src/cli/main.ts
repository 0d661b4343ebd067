/**
 * The `ingot` command line: parses arguments and calls the public API.
 * Exit codes: 0 ok, 1 the operation failed, 2 usage error. Errors are one
 * line on stderr; `--debug` prints the stack.
 */
import { Command, CommanderError } from 'commander';
import { IngotError, UsageError } from '../errors.js';
import { registerRpm } from './rpm.js';
import { registerFs } from './fs.js';
import { registerDisk } from './disk.js';
import { registerRepo } from './repo.js';
import { registerBuild } from './build.js';
import { registerBoot } from './boot.js';
import { registerCompose } from './compose.js';

export function makeProgram(): Command {
  const program = new Command();
  program
    .name('ingot')
    .description('Rootless disk-image assembler: image definition → RPMs → ext4/FAT/GPT → qcow2/vhd/vmdk/ova, boot-tested in qemu')
    .version('0.1.0')
    .option('--debug', 'print full stack traces on error')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerRpm(program);
  registerFs(program);
  registerDisk(program);
  registerRepo(program);
  registerBuild(program);
  registerBoot(program);
  registerCompose(program);
  for (const c of program.commands) c.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = makeProgram();
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
