import { IngotError, type ErrorContext } from '../errors.js';

/** A partition layout that cannot be realised (does not fit, bad size spec…). */
export class LayoutError extends IngotError {
  constructor(message: string, context: ErrorContext = {}) {
    super('DISK_LAYOUT', message, context);
  }
}

/** A malformed or unreadable MBR/GPT, or a table that cannot be written as asked. */
export class PartitionTableError extends IngotError {
  constructor(code: string, message: string, context: ErrorContext = {}) {
    super(code, message, context);
  }
}
