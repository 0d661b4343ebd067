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

/**
 * Bad, truncated or unsupported image content, or a read outside an image
 * file. `code` is stable (e.g. `IMAGE_OUT_OF_RANGE`, `QCOW2_L2_OUT_OF_RANGE`);
 * the context names the file and, where one exists, the byte offset.
 */
export class ImageFormatError extends IngotError {
  constructor(code: string, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(code, message, context, options);
  }
}
