/**
 * The typed error hierarchy. Every error ingot raises for bad input is an
 * {@link IngotError} carrying enough context (file, byte offset, field, line)
 * for a person to find the problem; the CLI prints `message` as one line.
 * Each subsystem subclasses it in its own module (e.g. `RpmFormatError`).
 */
export interface ErrorContext {
  /** File (or URL) the bad input came from. */
  file?: string;
  /** Byte offset of the offending structure within `file`. */
  offset?: number | bigint;
  /** Structure field, spec key, or XML element concerned. */
  field?: string;
  /** 1-based line number for text inputs. */
  line?: number;
  /** What was expected there. */
  expected?: string;
  /** What was found there. */
  actual?: string;
}

export class IngotError extends Error {
  /** Stable machine-readable code, e.g. `RPM_BAD_MAGIC`. */
  readonly code: string;
  readonly context: ErrorContext;

  constructor(code: string, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(formatMessage(message, context), options);
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }
}

/** Bad command-line usage; the CLI exits 2. */
export class UsageError extends IngotError {
  constructor(message: string, context: ErrorContext = {}) {
    super('USAGE', message, context);
  }
}

/** A path that would leave its root (`..`, absolute, or through a symlink). */
export class PathEscapeError extends IngotError {
  constructor(path: string, context: ErrorContext = {}) {
    super('PATH_ESCAPE', `path escapes the destination: ${JSON.stringify(path)}`, context);
  }
}

/** The operation was cancelled through an AbortSignal. */
export class AbortedError extends IngotError {
  constructor(message = 'operation aborted') {
    super('ABORTED', message);
  }
}

/** A required external program (oracle, qemu, …) is missing. */
export class MissingToolError extends IngotError {
  constructor(tool: string, debianPackage: string) {
    super('MISSING_TOOL', `${tool} not found: install the Debian package '${debianPackage}' (apt-get install ${debianPackage})`);
  }
}

function formatMessage(message: string, c: ErrorContext): string {
  const where: string[] = [];
  if (c.file !== undefined) where.push(c.line !== undefined ? `${c.file}:${c.line}` : c.file);
  else if (c.line !== undefined) where.push(`line ${c.line}`);
  if (c.offset !== undefined) where.push(`offset ${c.offset} (0x${c.offset.toString(16)})`);
  if (c.field !== undefined) where.push(`field ${c.field}`);
  let msg = where.length ? `${where.join(', ')}: ${message}` : message;
  if (c.expected !== undefined && c.actual !== undefined) msg += ` (expected ${c.expected}, found ${c.actual})`;
  else if (c.expected !== undefined) msg += ` (expected ${c.expected})`;
  else if (c.actual !== undefined) msg += ` (found ${c.actual})`;
  return msg;
}
