/** Fixture paths for the repo/solve tests: `../shared` beside the checkout, or /work/shared from a worktree. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SHARED as CLI_SHARED } from './helpers/cli.js';

export const SHARED = existsSync(join(CLI_SHARED, 'fixtures')) ? CLI_SHARED : (process.env.INGOT_SHARED ?? '/work/shared');
export const FIXTURE_REPOS = join(SHARED, 'fixtures/repos');
