/**
 * The repodata XML scanner (src/repo/xml.ts) against an independent XML
 * parser: Python's expat. Repodata-like documents (declaration, comments,
 * processing instructions, CDATA, character and predefined entities,
 * single-quoted attributes, self-closing tags, UTF-8 text, a DOCTYPE) and
 * seeded mutations of them (characters deleted, markup characters inserted,
 * slices duplicated, truncation) are fed to both, in random chunk sizes:
 * expat accepts a document exactly when the scanner does, and then every
 * element's name, attributes and (for elements without children) text agree.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { XmlScanner } from '../src/repo/xml.js';
import { rng } from './solve-synth.js';

const EXPAT = `
import sys, json
from xml.parsers import expat
out = []
for doc in json.load(sys.stdin):
    ev = []
    stack = []
    p = expat.ParserCreate('UTF-8')
    p.buffer_text = True
    def start(name, attrs):
        if stack: stack[-1][1] = True
        stack.append([name, False, ''])
        ev.append(['open', name, sorted(attrs.items())])
    def end(name):
        n, kids, text = stack.pop()
        ev.append(['close', name, '' if kids else text])
    def chars(t):
        if stack: stack[-1][2] += t
    p.StartElementHandler = start
    p.EndElementHandler = end
    p.CharacterDataHandler = chars
    try:
        p.Parse(doc.encode('utf-8'), True)
        out.append({'ok': True, 'events': ev})
    except expat.ExpatError as e:
        out.append({'ok': False, 'error': str(e)})
print(json.dumps(out))
`;

const BASES = [
  `<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="2">
<package type="rpm">
  <name>foo</name>
  <arch>x86_64</arch>
  <version epoch="0" ver="1.0" rel="1.fc40"/>
  <checksum type="sha256" pkgid="YES">0123abcd</checksum>
  <summary>Fo&amp;o &lt;tools&gt; &#65;&#x42; — naïve</summary>
  <!-- a comment -->
  <format>
    <rpm:provides><rpm:entry name="foo" flags="EQ" epoch="0" ver="1.0" rel="1"/></rpm:provides>
    <rpm:requires>
      <rpm:entry name="(bar &gt;= 2 or baz)"/>
      <rpm:entry name='libc.so.6()(64bit)' pre = "1"/>
    </rpm:requires>
    <file>/usr/bin/foo</file>
    <file type="dir">/etc/foo.d</file>
  </format>
</package>
<package type="rpm"><name><![CDATA[bar<&>]]>x</name><?pi some data?><location href="b&quot;ar.rpm"/></package>
</metadata>
`,
  `<?xml version="1.0"?>
<!DOCTYPE filelists>
<filelists packages="1"><package pkgid="ab" name="x" arch="noarch"><version epoch="0" ver="1" rel="1"/>
<file>/usr/share/x/a b.txt</file><file type="ghost">/var/log/x&amp;y</file></package></filelists>`,
];

function mutate(doc: string, r: () => number): string {
  const at = Math.floor(r() * doc.length);
  const k = r();
  if (k < 0.3) return doc.slice(0, at) + doc.slice(at + 1 + Math.floor(r() * 3));
  if (k < 0.7) return doc.slice(0, at) + '<>&"\'/= a!?-;#x[]'[Math.floor(r() * 18)] + doc.slice(at);
  if (k < 0.9) { const len = 1 + Math.floor(r() * 20); return doc.slice(0, at) + doc.slice(at, at + len) + doc.slice(at); }
  return doc.slice(0, at);
}

type Event = [string, string, [string, string][] | string];

function scan(doc: string, r: () => number): { ok: true; events: Event[] } | { ok: false; error: string } {
  const events: Event[] = [];
  const x = new XmlScanner({
    open(name, s) {
      const attrs: [string, string][] = [];
      for (let k = 0; k < s.attrCount; k++) {
        assert.ok(s.attrNameIs(k, s.attrName(k)));
        assert.is(s.attr(s.attrName(k)), s.attrValue(k));
        attrs.push([s.attrName(k), s.attrValue(k)]);
      }
      events.push(['open', name, attrs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))]);
    },
    close(name, s) { events.push(['close', name, s.leafText()]); },
  });
  try {
    for (let i = 0; i < doc.length;) {
      const n = 1 + Math.floor(r() * 64);
      x.write(doc.slice(i, i + n));
      i += n;
    }
    x.close();
    return { ok: true, events };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

test('expat and the scanner accept the same documents and report the same elements', () => {
  const r = rng(Number(process.env.INGOT_XML_SEED ?? 5));
  const docs: string[] = [...BASES];
  for (let i = 0; i < 4000; i++) {
    let d = BASES[i % BASES.length];
    const m = 1 + Math.floor(r() * 3);
    for (let k = 0; k < m; k++) d = mutate(d, r);
    docs.push(d);
  }
  const py = spawnSync('/usr/bin/python3', ['-c', EXPAT], { input: JSON.stringify(docs), encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.is(py.status, 0, py.stderr);
  const expected = JSON.parse(py.stdout) as ({ ok: true; events: Event[] } | { ok: false; error: string })[];
  const diffs: string[] = [];
  let rejected = 0;
  for (let i = 0; i < docs.length; i++) {
    const want = expected[i], got = scan(docs[i], r);
    if (!want.ok) rejected++;
    if (want.ok !== got.ok) diffs.push(`doc ${i}: expat ${want.ok ? 'accepts' : `rejects (${want.error})`}, scanner ${got.ok ? 'accepts' : `rejects (${got.error})`}: ${JSON.stringify(docs[i]).slice(0, 300)}`);
    else if (want.ok && got.ok && JSON.stringify(want.events) !== JSON.stringify(got.events)) diffs.push(`doc ${i}: events differ: ${JSON.stringify(want.events).slice(0, 200)} vs ${JSON.stringify(got.events).slice(0, 200)}`);
  }
  assert.equal(diffs.slice(0, 10), []);
  assert.ok(rejected > 300 && rejected < docs.length - 100, `both accepted and rejected documents (${rejected} rejected)`);
});

test.run();
