/**
 * Typed errors for repositories: each names the repository, the file (path or
 * URL) and, where it applies, the XML element or metadata entry concerned.
 */
import { IngotError, type ErrorContext } from '../errors.js';

export interface RepoErrorContext extends ErrorContext {
  /** Repository id as configured. */
  repo?: string;
}

export class RepoError extends IngotError {
  readonly repo: string | undefined;
  constructor(code: string, message: string, context: RepoErrorContext = {}, options?: { cause?: unknown }) {
    const { repo, ...rest } = context;
    super(code, repo !== undefined ? `repo ${repo}: ${message}` : message, rest, options);
    this.repo = repo;
  }
}

/** Malformed or unexpected XML in repomd/primary/filelists/comps/metalink. */
export class RepoMetadataError extends RepoError {
  constructor(message: string, context: RepoErrorContext = {}, options?: { cause?: unknown }) {
    super('REPO_METADATA', message, context, options);
  }
}

/** A file's checksum or size does not match what the metadata promises. */
export class ChecksumMismatchError extends RepoError {
  constructor(message: string, context: RepoErrorContext = {}) {
    super('REPO_CHECKSUM', message, context);
  }
}

/** Network failures after all retries and mirrors. */
export class DownloadError extends RepoError {
  constructor(message: string, context: RepoErrorContext = {}, options?: { cause?: unknown }) {
    super('REPO_DOWNLOAD', message, context, options);
  }
}

/** Compression not recognised or not supported. */
export class CompressionError extends RepoError {
  constructor(message: string, context: RepoErrorContext = {}) {
    super('REPO_COMPRESSION', message, context);
  }
}

/** Repository configuration errors (bad option, unknown variable). */
export class RepoConfigError extends RepoError {
  constructor(message: string, context: RepoErrorContext = {}) {
    super('REPO_CONFIG', message, context);
  }
}
