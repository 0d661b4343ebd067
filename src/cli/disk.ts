import type { Command } from 'commander';

/** Commands of this group are added here; see the matching issue. */
export function registerDisk(_program: Command): void {
  // not yet implemented
}
