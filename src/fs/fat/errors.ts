import { IngotError, type ErrorContext } from '../../errors.js';

/** A FAT volume that is malformed, or a request that cannot be written as FAT. */
export class FatError extends IngotError {
  constructor(code: string, message: string, context: ErrorContext = {}) {
    super(code, message, context);
  }
}
