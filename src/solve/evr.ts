/**
 * Version comparison exactly as rpm does it: `rpmvercmp` (rpmio/rpmvercmp.c
 * semantics, including `~` sorting before everything and `^` sorting after
 * the end of a version but before any further segment), full EVR comparison
 * and the dependency range overlap rule of rpmdsCompare / libsolv's
 * EVRCMP_MATCH_RELEASE (a side without a release matches every release when
 * its range includes equality).
 */

/** Dependency sense flags, numerically the same bits as RPMSENSE_LESS/GREATER/EQUAL. */
export const SENSE_LESS = 2;
export const SENSE_GREATER = 4;
export const SENSE_EQUAL = 8;

const enum Ch { Tilde = 0x7e, Caret = 0x5e, Zero = 0x30, Nine = 0x39 }

function isDigit(c: number): boolean { return c >= Ch.Zero && c <= Ch.Nine; }
/** C-locale isalpha: bytes above 127 (UTF-8 letters) are not letters, as in rpm. */
function isAlpha(c: number): boolean { return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a); }
function isAlnum(c: number): boolean { return isDigit(c) || isAlpha(c); }

/** rpmvercmp(a, b): -1, 0 or 1. */
export function rpmvercmp(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0, j = 0;
  const la = a.length, lb = b.length;
  while (i < la || j < lb) {
    while (i < la && !isAlnum(a.charCodeAt(i)) && a.charCodeAt(i) !== Ch.Tilde && a.charCodeAt(i) !== Ch.Caret) i++;
    while (j < lb && !isAlnum(b.charCodeAt(j)) && b.charCodeAt(j) !== Ch.Tilde && b.charCodeAt(j) !== Ch.Caret) j++;
    const ca = i < la ? a.charCodeAt(i) : 0;
    const cb = j < lb ? b.charCodeAt(j) : 0;
    // `~` sorts before anything, even the end of the string.
    if (ca === Ch.Tilde || cb === Ch.Tilde) {
      if (ca !== Ch.Tilde) return 1;
      if (cb !== Ch.Tilde) return -1;
      i++; j++;
      continue;
    }
    // `^` sorts after the end of the string but before any other segment.
    if (ca === Ch.Caret || cb === Ch.Caret) {
      if (i >= la) return -1;
      if (j >= lb) return 1;
      if (ca !== Ch.Caret) return 1;
      if (cb !== Ch.Caret) return -1;
      i++; j++;
      continue;
    }
    if (!(i < la && j < lb)) break;
    const si = i, sj = j;
    const numeric = isDigit(ca);
    if (numeric) {
      while (i < la && isDigit(a.charCodeAt(i))) i++;
      while (j < lb && isDigit(b.charCodeAt(j))) j++;
    } else {
      while (i < la && isAlpha(a.charCodeAt(i))) i++;
      while (j < lb && isAlpha(b.charCodeAt(j))) j++;
    }
    // A numeric segment is newer than an alphabetic one.
    if (sj === j) return numeric ? 1 : -1;
    let sa = a.slice(si, i), sb = b.slice(sj, j);
    if (numeric) {
      sa = sa.replace(/^0+/, '');
      sb = sb.replace(/^0+/, '');
      if (sa.length !== sb.length) return sa.length > sb.length ? 1 : -1;
    }
    if (sa !== sb) return sa < sb ? -1 : 1;
  }
  if (i >= la && j >= lb) return 0;
  return i >= la ? -1 : 1;
}

/** An [epoch:]version[-release]; epoch/release undefined when absent. */
export interface Evr { epoch?: string; version: string; release?: string }

/** rpm's parseEVR: leading digits then `:` make the epoch; the last `-` starts the release. */
export function parseEvr(s: string): Evr {
  let k = 0;
  while (k < s.length && isDigit(s.charCodeAt(k))) k++;
  let epoch: string | undefined;
  let rest = s;
  if (s.charCodeAt(k) === 0x3a) {
    epoch = s.slice(0, k) || '0';
    rest = s.slice(k + 1);
  }
  const dash = rest.lastIndexOf('-');
  if (dash >= 0) return { epoch, version: rest.slice(0, dash), release: rest.slice(dash + 1) };
  return { epoch, version: rest };
}

export function formatEvr(e: Evr): string {
  return `${e.epoch !== undefined && e.epoch !== '' && e.epoch !== '0' ? `${e.epoch}:` : ''}${e.version}${e.release !== undefined && e.release !== '' ? `-${e.release}` : ''}`;
}

function epochCmp(a: string | undefined, b: string | undefined): number {
  return rpmvercmp(a || '0', b || '0');
}

/** Full EVR ordering (labelCompare): missing epoch is 0; a missing release compares as empty. */
export function evrCompare(a: Evr, b: Evr): number {
  return epochCmp(a.epoch, b.epoch) || rpmvercmp(a.version, b.version) || rpmvercmp(a.release ?? '', b.release ?? '');
}

export function evrCompareStr(a: string, b: string): number {
  return evrCompare(parseEvr(a), parseEvr(b));
}

/**
 * Do the ranges `(flagsA evrA)` and `(flagsB evrB)` intersect? This is
 * rpmdsCompare's overlap test: a side without a release matches every release
 * when its sense includes EQUAL; a range without a sense matches everything.
 */
export function rangesOverlap(flagsA: number, evrA: Evr | undefined, flagsB: number, evrB: Evr | undefined): boolean {
  const fa = flagsA & (SENSE_LESS | SENSE_GREATER | SENSE_EQUAL);
  const fb = flagsB & (SENSE_LESS | SENSE_GREATER | SENSE_EQUAL);
  if (!fa || !fb || !evrA || !evrB) return true;
  let sense = epochCmp(evrA.epoch, evrB.epoch);
  if (sense === 0) {
    sense = rpmvercmp(evrA.version, evrB.version);
    if (sense === 0) {
      const ra = evrA.release !== undefined && evrA.release !== '';
      const rb = evrB.release !== undefined && evrB.release !== '';
      if (ra && rb) sense = rpmvercmp(evrA.release!, evrB.release!);
      else if ((ra && (fb & SENSE_EQUAL)) || (rb && (fa & SENSE_EQUAL))) return true;
    }
  }
  if (sense < 0) return (fa & SENSE_GREATER) !== 0 || (fb & SENSE_LESS) !== 0;
  if (sense > 0) return (fa & SENSE_LESS) !== 0 || (fb & SENSE_GREATER) !== 0;
  return ((fa & fb) & (SENSE_EQUAL | SENSE_LESS | SENSE_GREATER)) !== 0;
}

/** Parse an operator as written in specs and dependency strings (`<`, `<=`, `=`, `==`, `>=`, `>`). */
export function senseFromOp(op: string): number | undefined {
  switch (op) {
    case '<': return SENSE_LESS;
    case '<=': case '=<': return SENSE_LESS | SENSE_EQUAL;
    case '=': case '==': return SENSE_EQUAL;
    case '>=': case '=>': return SENSE_GREATER | SENSE_EQUAL;
    case '>': return SENSE_GREATER;
    default: return undefined;
  }
}

/** Flags as repodata writes them (`LT`, `LE`, `EQ`, `GE`, `GT`). */
export function senseFromRepodata(flags: string): number | undefined {
  switch (flags) {
    case 'LT': return SENSE_LESS;
    case 'LE': return SENSE_LESS | SENSE_EQUAL;
    case 'EQ': return SENSE_EQUAL;
    case 'GE': return SENSE_GREATER | SENSE_EQUAL;
    case 'GT': return SENSE_GREATER;
    default: return undefined;
  }
}

export function opFromSense(f: number): string {
  switch (f & 14) {
    case SENSE_LESS: return '<';
    case SENSE_LESS | SENSE_EQUAL: return '<=';
    case SENSE_EQUAL: return '=';
    case SENSE_GREATER | SENSE_EQUAL: return '>=';
    case SENSE_GREATER: return '>';
    default: return '';
  }
}
