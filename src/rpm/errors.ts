/** Errors of the RPM reader: every bad package is reported as one of these, with file and byte offset. */
import { IngotError, type ErrorContext } from '../errors.js';

/** The package bytes do not follow the RPM file format (lead, headers, payload, cpio). */
export class RpmFormatError extends IngotError {
  constructor(code: string, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(`RPM_${code}`, message, context, options);
  }
}

/** A digest or signature in the package does not match its contents. */
export class RpmIntegrityError extends IngotError {
  constructor(code: string, message: string, context: ErrorContext = {}) {
    super(`RPM_${code}`, message, context);
  }
}
