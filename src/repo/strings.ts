/**
 * String interning for the package pool: every name, arch, EVR and dependency
 * name is stored once and referred to by a small integer (id 0 is "").
 */
export class StringPool {
  private readonly ids = new Map<string, number>();
  private readonly strs: string[] = [''];

  constructor() { this.ids.set('', 0); }

  intern(s: string): number {
    let id = this.ids.get(s);
    if (id === undefined) {
      s = detach(s);
      id = this.strs.length;
      this.strs.push(s);
      this.ids.set(s, id);
    }
    return id;
  }

  /** Id of `s` or -1 when it was never interned (lookups never grow the pool). */
  lookup(s: string): number {
    return this.ids.get(s) ?? -1;
  }

  str(id: number): string {
    return this.strs[id];
  }

  get size(): number { return this.strs.length; }
}

/**
 * A copy of `s` that does not keep a larger string alive: V8 represents a
 * slice of 13+ characters as a view into its parent, so a name sliced out of
 * a 1 MiB parser chunk would pin the whole chunk for as long as the pool
 * holds the name. Concatenating and slicing again makes V8 flatten into a
 * string of the name's own size.
 */
export function detach(s: string): string {
  return s.length < 13 ? s : (' ' + s).slice(1);
}
