/**
 * A small streaming XML scanner for repodata (primary.xml, filelists.xml):
 * elements, attributes, leaf text, comments, processing instructions, CDATA
 * and a DOCTYPE without internal subset. It checks well-formedness as far as
 * repodata needs (names, quoting, `<` in attribute values, nesting, a single
 * root, nothing but white space outside it, entity references) and hands
 * attributes and leaf text out lazily, so the hundreds of megabytes of
 * Fedora's filelists cost one pass of `indexOf` over decoded chunks and a
 * string only for what the caller asks for. XML 1.0 §2.1, §2.3, §2.4, §2.5,
 * §2.6, §2.8, §3.1, §4.1 (character and predefined entity references).
 * Not done (createrepo never writes what they would change): attribute-value
 * white-space normalisation (§3.3.3) and CR LF → LF (§2.11); characters
 * outside XML's Char production are not rejected.
 */

export class XmlSyntaxError extends Error {
  constructor(message: string, readonly offset: number, readonly element: string | undefined) {
    super(message);
  }
}

export interface XmlHandler {
  /** An element starts; attributes are readable through `x.attr()` during the call. */
  open(name: string, x: XmlScanner): void;
  /** An element ends; `x.leafText()` is its text when it has no child elements. */
  close(name: string, x: XmlScanner): void;
}

const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

// ASCII characters allowed in names (XML 1.0 §2.3 NameChar); non-ASCII is accepted as is.
const NAME_START = new Uint8Array(128);
const NAME_CHAR = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z_:]/.test(ch)) NAME_START[c] = NAME_CHAR[c] = 1;
  if (/[0-9.-]/.test(ch)) NAME_CHAR[c] = 1;
}
const isNameStart = (c: number) => (c < 128 ? NAME_START[c] === 1 : true);
const isNameChar = (c: number) => (c < 128 ? NAME_CHAR[c] === 1 : true);
const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;

/** Replace entity references in `s`; a malformed or unknown reference is an error. */
export function decodeEntities(s: string, at: number, element: string | undefined): string {
  let i = s.indexOf('&');
  if (i < 0) return s;
  let out = '';
  let last = 0;
  while (i >= 0) {
    const semi = s.indexOf(';', i + 1);
    const ref = semi < 0 ? '' : s.slice(i + 1, semi);
    let rep: string | undefined;
    if (ref.charCodeAt(0) === 0x23 /* # */) {
      const code = ref[1] === 'x' ? /^x[0-9a-fA-F]+$/.test(ref.slice(1)) ? parseInt(ref.slice(2), 16) : NaN : /^[0-9]+$/.test(ref.slice(1)) ? Number(ref.slice(1)) : NaN;
      // §2.2 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
      if (code === 9 || code === 10 || code === 13 || (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff)) rep = String.fromCodePoint(code);
    } else rep = PREDEFINED[ref];
    if (rep === undefined) throw new XmlSyntaxError(`bad entity reference &${ref.slice(0, 20)}${semi < 0 ? '' : ';'}`, at + i, element);
    out += s.slice(last, i) + rep;
    last = semi + 1;
    i = s.indexOf('&', last);
  }
  return out + s.slice(last);
}

/** §2.8 XMLDecl: version, then optional encoding and standalone. */
const XML_DECL = /^<\?xml\s+version\s*=\s*(?:"[A-Za-z0-9_.:-]*"|'[A-Za-z0-9_.:-]*')(?:\s+encoding\s*=\s*(?:"[A-Za-z][A-Za-z0-9._-]*"|'[A-Za-z][A-Za-z0-9._-]*'))?(?:\s+standalone\s*=\s*(?:"(?:yes|no)"|'(?:yes|no)'))?\s*\?>$/;

/** §2.8 doctypedecl without internal subset: name and an optional SYSTEM or PUBLIC identifier. */
const DOCTYPE = /^<!DOCTYPE\s+[A-Za-z_:\u0080-\uffff][A-Za-z0-9_.:\u0080-\uffff-]*(?:\s+(?:SYSTEM\s+(?:"[^"]*"|'[^']*')|PUBLIC\s+(?:"[^"]*"|'[^']*')\s+(?:"[^"]*"|'[^']*')))?\s*>$/;

/** Thrown internally when a construct continues in the next chunk. */
const INCOMPLETE = -1;

export class XmlScanner {
  private buf = '';
  /** Characters consumed before `buf` (for error offsets). */
  private base = 0;
  private readonly stack: string[] = [];
  private rootSeen = false;
  private bom = false;
  private doctypeSeen = false;
  private ended = false;
  // current start tag's attributes, as positions in buf
  private readonly attrPos: number[] = [];
  private nattr = 0;
  // text of the element opened last, while it has no child elements
  private leafStart = -1;
  private leafEnd = -1;
  /** Position of the next `&` at or after the last query in buf (Infinity: none). */
  private ampPos = -1;
  /** Same for `]]>`, which text must not contain (§2.4). */
  private cdEndPos = -1;

  constructor(private readonly h: XmlHandler) {}

  /** The element currently open (innermost), for error messages. */
  get element(): string | undefined { return this.stack[this.stack.length - 1]; }

  /** Value of attribute `name` of the start tag being reported, or undefined. */
  attr(name: string): string | undefined {
    const s = this.buf, a = this.attrPos;
    for (let k = 0; k < this.nattr; k++) {
      const ns = a[4 * k];
      if (a[4 * k + 1] - ns === name.length && s.startsWith(name, ns)) return this.attrValue(k);
    }
    return undefined;
  }

  /** Number of attributes of the start tag being reported. */
  get attrCount(): number { return this.nattr; }

  /** First character code of attribute k's name (for dispatching without building the name). */
  attrNameCode(k: number): number { return this.buf.charCodeAt(this.attrPos[4 * k]); }

  /** Name of attribute k. */
  attrName(k: number): string { return this.buf.slice(this.attrPos[4 * k], this.attrPos[4 * k + 1]); }

  /** Is attribute k named `name`? */
  attrNameIs(k: number, name: string): boolean {
    const ns = this.attrPos[4 * k];
    return this.attrPos[4 * k + 1] - ns === name.length && this.buf.startsWith(name, ns);
  }

  /** Value of attribute k (entity references replaced). */
  attrValue(k: number): string {
    const a = this.attrPos;
    const v = this.buf.slice(a[4 * k + 2], a[4 * k + 3]);
    return v.indexOf('&') < 0 ? v : decodeEntities(v, this.base + a[4 * k + 2], this.element);
  }

  /** Text content of the element being closed when it had no child elements ('' otherwise). */
  leafText(): string {
    if (this.leafStart < 0) return '';
    const raw = this.buf.slice(this.leafStart, this.leafEnd);
    if (raw.indexOf('<') < 0) return raw.indexOf('&') < 0 ? raw : decodeEntities(raw, this.base + this.leafStart, this.element);
    // comments, processing instructions or CDATA sections inside the text
    let out = '';
    for (let i = 0; i < raw.length;) {
      const lt = raw.indexOf('<', i);
      const end = lt < 0 ? raw.length : lt;
      out += decodeEntities(raw.slice(i, end), this.base + this.leafStart + i, this.element);
      if (lt < 0) break;
      if (raw.startsWith('<![CDATA[', lt)) {
        const e = raw.indexOf(']]>', lt);
        out += raw.slice(lt + 9, e);
        i = e + 3;
      } else if (raw.startsWith('<!--', lt)) i = raw.indexOf('-->', lt) + 3;
      else i = raw.indexOf('?>', lt) + 2;
    }
    return out;
  }

  private fail(msg: string, at: number): never {
    throw new XmlSyntaxError(msg, this.base + at, this.element);
  }

  /** Feed the next piece of the document. */
  write(chunk: string): void {
    if (this.ended) this.fail('content after the end of the document', 0);
    if (this.base === 0 && !this.buf.length && chunk.charCodeAt(0) === 0xfeff) { chunk = chunk.slice(1); this.base = 1; this.bom = true; }
    this.buf = this.buf.length ? this.buf + chunk : chunk;
    this.scan(false);
  }

  /** The document is complete: anything unfinished is an error. */
  close(): void {
    this.scan(true);
    if (this.stack.length) this.fail(`unexpected end of document inside <${this.element}>`, this.buf.length);
    if (!this.rootSeen) this.fail('no root element', this.buf.length);
    this.ended = true;
  }

  /** Is there an `&` in buf[from, to)? Amortised: each chunk is searched forward once. */
  private ampIn(from: number, to: number): boolean {
    if (this.ampPos < from) { const i = this.buf.indexOf('&', from); this.ampPos = i < 0 ? Infinity : i; }
    return this.ampPos < to;
  }

  private text(from: number, to: number): void {
    const s = this.buf;
    if (this.stack.length) {
      // entity references are checked even in text nobody reads
      if (this.ampIn(from, to)) decodeEntities(s.slice(from, to), this.base + from, this.element);
      if (this.cdEndPos < from) { const i = s.indexOf(']]>', from); this.cdEndPos = i < 0 ? Infinity : i; }
      if (this.cdEndPos + 3 <= to) this.fail(']]> in text', this.cdEndPos);
      return;
    }
    for (let i = from; i < to; i++) if (!isSpace(s.charCodeAt(i))) this.fail('text outside the root element', i);
  }

  private scan(final: boolean): void {
    const s = this.buf;
    const n = s.length;
    let pos = 0;
    this.ampPos = -1;
    this.cdEndPos = -1;
    for (;;) {
      const lt = s.indexOf('<', pos);
      if (lt < 0) {
        // an entity reference may continue in the next chunk
        let end = n;
        if (!final) {
          const a = s.lastIndexOf('&');
          if (a >= pos && s.indexOf(';', a) < 0) end = a;
          while (end > pos && n - end < 2 && s.charCodeAt(end - 1) === 0x5d /* ] */) end--; // a ]]> split by the chunk
        }
        this.text(pos, end);
        pos = end;
        break;
      }
      this.text(pos, lt);
      const next = this.markup(s, lt, n);
      if (next === INCOMPLETE) {
        if (final) this.fail(`unexpected end of document inside <${this.element ?? '?'}>`, lt);
        pos = lt;
        break;
      }
      pos = next;
    }
    // keep the unfinished part, and the open leaf element's text so far
    const keep = this.leafStart >= 0 && this.leafStart < pos ? this.leafStart : pos;
    if (this.leafStart >= 0) this.leafStart -= keep;
    this.buf = keep < n ? s.slice(keep) : '';
    this.base += keep;
  }

  /** Handle the markup starting at `lt`; returns the position after it or INCOMPLETE. */
  private markup(s: string, lt: number, n: number): number {
    if (lt + 1 >= n) return INCOMPLETE;
    const c = s.charCodeAt(lt + 1);
    if (c === 0x2f /* / */) return this.endTag(s, lt, n);
    if (c === 0x21 /* ! */) {
      if (s.startsWith('<!--', lt)) {
        const e = s.indexOf('-->', lt + 4);
        if (e < 0) return INCOMPLETE;
        if (s.indexOf('--', lt + 4) !== e) this.fail('-- inside a comment', lt);
        return e + 3;
      }
      if (s.startsWith('<![CDATA[', lt)) {
        const e = s.indexOf(']]>', lt + 9);
        if (e < 0) return INCOMPLETE;
        if (!this.stack.length) this.fail('CDATA outside the root element', lt);
        return e + 3;
      }
      if (s.startsWith('<!DOCTYPE', lt)) {
        if (this.rootSeen || this.doctypeSeen) this.fail('DOCTYPE after the root element or a second DOCTYPE', lt);
        const e = s.indexOf('>', lt);
        if (e < 0) return INCOMPLETE;
        if (s.lastIndexOf('[', e) > lt) this.fail('DOCTYPE internal subsets are not supported', lt);
        if (!DOCTYPE.test(s.slice(lt, e + 1))) this.fail('malformed DOCTYPE', lt);
        this.doctypeSeen = true;
        return e + 1;
      }
      if (n - lt < 9) return INCOMPLETE;
      this.fail('bad markup after <!', lt);
    }
    if (c === 0x3f /* ? */) {
      const e = s.indexOf('?>', lt + 2);
      if (e < 0) return INCOMPLETE;
      // §2.6: a target name; §2.8: the XML declaration only at the very start
      if (!isNameStart(s.charCodeAt(lt + 2))) this.fail('processing instruction without a target', lt);
      let t = lt + 2;
      while (t < e && isNameChar(s.charCodeAt(t))) t++;
      if (t < e && !isSpace(s.charCodeAt(t))) this.fail('bad processing instruction target', lt);
      if (t - lt - 2 === 3 && s.slice(lt + 2, t).toLowerCase() === 'xml') {
        if (this.base + lt > (this.bom ? 1 : 0)) this.fail('XML declaration not at the start of the document', lt);
        if (!XML_DECL.test(s.slice(lt, e + 2))) this.fail('malformed XML declaration', lt);
      }
      return e + 2;
    }
    return this.startTag(s, lt, n);
  }

  private endTag(s: string, lt: number, n: number): number {
    const gt = s.indexOf('>', lt + 2);
    if (gt < 0) return INCOMPLETE;
    let e = gt;
    while (e > lt + 2 && isSpace(s.charCodeAt(e - 1))) e--;
    const top = this.stack[this.stack.length - 1];
    if (top === undefined) this.fail('closing tag without an open element', lt);
    if (e - (lt + 2) !== top.length || !s.startsWith(top, lt + 2)) {
      this.fail(`mismatched closing tag </${s.slice(lt + 2, Math.min(e, lt + 66))}>, expected </${top}>`, lt);
    }
    if (this.leafStart >= 0) this.leafEnd = lt;
    this.h.close(top, this);
    this.stack.pop();
    this.leafStart = -1;
    return gt + 1;
  }

  /** Element names seen so far, by length: documents use a few dozen, so no string per tag. */
  private readonly names: string[][] = [];

  private elementName(s: string, from: number, to: number): string {
    const len = to - from;
    const bucket = this.names[len] ??= [];
    for (const name of bucket) if (s.startsWith(name, from)) return name;
    const name = s.slice(from, to);
    if (bucket.length < 16) bucket.push(name);
    return name;
  }

  private startTag(s: string, lt: number, n: number): number {
    let i = lt + 1;
    if (!isNameStart(s.charCodeAt(i))) this.fail('bad element name', lt);
    while (i < n && isNameChar(s.charCodeAt(i))) i++;
    if (i >= n) return INCOMPLETE;
    const nameEnd = i;
    const a = this.attrPos;
    let count = 0;
    for (;;) {
      const sp = i;
      while (i < n && isSpace(s.charCodeAt(i))) i++;
      if (i >= n) return INCOMPLETE;
      const c = s.charCodeAt(i);
      if (c === 0x3e /* > */ || c === 0x2f /* / */) {
        let selfClosing = false;
        if (c === 0x2f) {
          if (i + 1 >= n) return INCOMPLETE;
          if (s.charCodeAt(i + 1) !== 0x3e) this.fail('expected > after /', i);
          selfClosing = true;
          i++;
        }
        if (!this.stack.length && this.rootSeen) this.fail('a second root element', lt);
        const name = this.elementName(s, lt + 1, nameEnd);
        this.nattr = count;
        this.stack.push(name);
        this.rootSeen = true;
        this.leafStart = -1;
        this.h.open(name, this);
        if (selfClosing) {
          this.h.close(name, this);
          this.stack.pop();
        } else this.leafStart = i + 1;
        return i + 1;
      }
      if (sp === i) this.fail('expected white space between attributes', i);
      // attribute: Name Eq AttValue (§3.1)
      const ns = i;
      if (!isNameStart(c)) this.fail('bad attribute name', i);
      while (i < n && isNameChar(s.charCodeAt(i))) i++;
      const ne = i;
      while (i < n && isSpace(s.charCodeAt(i))) i++;
      if (i >= n) return INCOMPLETE;
      if (s.charCodeAt(i) !== 0x3d /* = */) this.fail(`attribute ${s.slice(ns, ne)} without a value`, i);
      i++;
      while (i < n && isSpace(s.charCodeAt(i))) i++;
      if (i >= n) return INCOMPLETE;
      const q = s.charCodeAt(i);
      if (q !== 0x22 && q !== 0x27) this.fail(`unquoted value of attribute ${s.slice(ns, ne)}`, i);
      const ve = s.indexOf(q === 0x22 ? '"' : "'", i + 1);
      if (ve < 0) return INCOMPLETE;
      const bad = s.indexOf('<', i + 1);
      if (bad >= 0 && bad < ve) this.fail(`< in the value of attribute ${s.slice(ns, ne)}`, bad);
      if (this.ampIn(i + 1, ve)) decodeEntities(s.slice(i + 1, ve), this.base + i + 1, this.element);
      for (let k = 0; k < count; k++) {
        if (a[4 * k + 1] - a[4 * k] === ne - ns && s.startsWith(s.slice(ns, ne), a[4 * k])) this.fail(`duplicate attribute ${s.slice(ns, ne)}`, ns);
      }
      a[4 * count] = ns; a[4 * count + 1] = ne; a[4 * count + 2] = i + 1; a[4 * count + 3] = ve;
      count++;
      i = ve + 1;
    }
  }
}
