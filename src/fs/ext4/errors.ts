import { IngotError, type ErrorContext } from '../../errors.js';

/** A problem building or reading an ext2/3/4 filesystem; `context.offset` is the byte offset in the image. */
export class Ext4Error extends IngotError {
  constructor(code: string, message: string, context: ErrorContext = {}) {
    super(code, message, context);
  }
}
