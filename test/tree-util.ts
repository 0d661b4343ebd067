/** Small helpers shared by the tree and install tests. */
import * as assert from 'uvu/assert';

/** Assert that `p` rejects, optionally with a message matching `re`. */
export async function rejects(p: Promise<unknown>, re?: RegExp): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    if (re) assert.match(String((e as Error).message), re);
    return e;
  }
  assert.unreachable('expected a rejection');
  return undefined;
}
