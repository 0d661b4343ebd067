/**
 * Typed errors for the image formats. Every rejection names the file and,
 * where one exists, the byte offset of the offending structure.
 */
import { ImageFormatError } from '../src/disk/errors.js';

/** Defined beside the file source that raises it for reads outside a file; every format uses it. */
export { ImageFormatError };

/** A backing file named by an image is missing or forms a loop. */
export class BackingChainError extends ImageFormatError {}

/** The requested output cannot be produced with these options (e.g. Azure size rule). */
export class ImageOptionError extends ImageFormatError {}
