/**
 * Typed errors for the image formats. Every rejection names the file and,
 * where one exists, the byte offset of the offending structure.
 */
import { IngotError, type ErrorContext } from '../src/errors.js';

/** Bad, truncated or unsupported image content. `code` is stable (e.g. `QCOW2_L2_OUT_OF_RANGE`). */
export class ImageFormatError extends IngotError {
  constructor(code: string, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(code, message, context, options);
  }
}

/** A backing file named by an image is missing or forms a loop. */
export class BackingChainError extends ImageFormatError {}

/** The requested output cannot be produced with these options (e.g. Azure size rule). */
export class ImageOptionError extends ImageFormatError {}
