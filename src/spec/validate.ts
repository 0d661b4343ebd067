/**
 * A small JSON Schema validator for the subset `image-spec.schema.json` uses
 * (draft 2020-12 keywords: type, enum, const, properties, required,
 * additionalProperties, items, minItems, minLength, pattern, minimum,
 * maximum, oneOf, anyOf, $ref into `#/$defs`). Errors carry the field path
 * (`disk.partitions[2].size`) and the offending value.
 */
export interface JsonSchema {
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  minItems?: number;
  minLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  description?: string;
  [k: string]: unknown;
}

export interface SchemaError { path: string; message: string; actual?: string }

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

const join = (path: string, key: string | number): string =>
  typeof key === 'number' ? `${path}[${key}]` : /^[A-Za-z_$][\w$]*$/.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${JSON.stringify(key)}]`;

/** Validate `value`; returns every error found (empty when valid). */
export function validate(schema: JsonSchema, value: unknown, root: JsonSchema = schema, path = ''): SchemaError[] {
  if (schema.$ref) {
    const m = /^#\/\$defs\/(.+)$/.exec(schema.$ref);
    const target = m ? root.$defs?.[m[1]!] : undefined;
    if (!target) throw new Error(`unsupported $ref ${schema.$ref}`);
    return validate(target, value, root, path);
  }
  const errs: SchemaError[] = [];
  const err = (message: string): SchemaError[] => { errs.push({ path, message, actual: show(value) }); return errs; };
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const t = typeOf(value);
    if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) return err(`must be ${types.join(' or ')}, not ${t}`);
  }
  if (schema.const !== undefined && value !== schema.const) return err(`must be ${show(schema.const)}`);
  if (schema.enum && !schema.enum.includes(value)) return err(`must be one of ${schema.enum.map((x) => show(x)).join(', ')}`);
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) return err(schema.minLength === 1 ? 'must not be empty' : `must have at least ${schema.minLength} characters`);
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) return err(`must match ${schema.pattern}`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) return err(`must be >= ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) return err(`must be <= ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) return err(`must have at least ${schema.minItems} item(s)`);
    if (schema.items) value.forEach((v, i) => errs.push(...validate(schema.items!, v, root, join(path, i))));
  }
  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    for (const r of schema.required ?? []) {
      if (obj[r] === undefined) errs.push({ path: join(path, r), message: 'is required' });
    }
    for (const [k, v] of Object.entries(obj)) {
      if (v === undefined) continue;
      const ps = schema.properties?.[k];
      if (ps) errs.push(...validate(ps, v, root, join(path, k)));
      else if (schema.additionalProperties === false) errs.push({ path: join(path, k), message: 'is not a known field' });
      else if (typeof schema.additionalProperties === 'object') errs.push(...validate(schema.additionalProperties, v, root, join(path, k)));
    }
  }
  if (schema.anyOf || schema.oneOf) {
    const alts = (schema.anyOf ?? schema.oneOf)!;
    const results = alts.map((s) => validate(s, value, root, path));
    const ok = results.filter((r) => r.length === 0).length;
    if (schema.oneOf ? ok !== 1 : ok === 0) {
      if (ok > 1) return err('matches more than one alternative');
      // Report the alternative that got furthest (fewest errors, deepest path).
      const best = results.slice().sort((a, b) => a.length - b.length || (b[0]?.path.length ?? 0) - (a[0]?.path.length ?? 0))[0]!;
      if (best.length && best[0]!.path !== path) errs.push(...best);
      else err(`does not match any allowed form${schema.description ? ` (${schema.description})` : ''}`);
    }
  }
  return errs;
}
