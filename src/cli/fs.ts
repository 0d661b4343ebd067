import type { Command } from 'commander';

/** Commands of this group are added here; see the matching issue. */
export function registerFs(_program: Command): void {
  // not yet implemented
}
