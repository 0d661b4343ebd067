// Oracle: libcap's own setcap writes the xattr on a real file; getfattr reads it back as hex.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFileCaps } from '../src/install/caps.js';
import { requireTool } from './helpers/tools.js';

const CASES = ['cap_net_raw=ep', 'cap_net_bind_service+ep', 'cap_sys_admin,cap_net_admin=eip', 'cap_setuid,cap_setgid=p',
  'cap_dac_read_search,cap_sys_ptrace=ep', 'cap_bpf,cap_perfmon=ep', 'cap_chown=i', 'cap_net_raw,cap_ipc_lock+p cap_net_raw,cap_ipc_lock+e'];

test('security.capability equals what setcap writes', () => {
  requireTool('setcap', 'libcap2-bin');
  requireTool('getfattr', 'attr');
  const dir = mkdtempSync(join(tmpdir(), 'ingot-caps-'));
  try {
    for (const c of CASES) {
      const f = join(dir, 'f');
      writeFileSync(f, 'x');
      execFileSync('setcap', [c, f]);
      const out = execFileSync('getfattr', ['--absolute-names', '-e', 'hex', '-n', 'security.capability', f], { encoding: 'utf8' });
      const hex = /security\.capability=0x([0-9a-f]+)/.exec(out)![1]!;
      assert.is(Buffer.from(encodeFileCaps(c)).toString('hex'), hex, c);
      rmSync(f);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('unknown capability names are typed errors', () => {
  assert.throws(() => encodeFileCaps('cap_flying=ep', '/usr/bin/x'), /unknown capability/);
  // Linux refuses an effective set that is neither empty nor permitted|inheritable (setcap says so too).
  assert.throws(() => encodeFileCaps('cap_net_raw,cap_ipc_lock+p cap_net_raw+e', '/usr/bin/x'), /effective/);
});

test.run();
