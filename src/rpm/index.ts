/**
 * The RPM package reader: public API for the CLI and the other stages.
 *
 *   const pkg = await openRpm('x.rpm');     // lead + headers parsed and validated
 *   pkg.info                                // PackageInfo: NEVRA, deps, scripts, triggers, …
 *   pkg.files                               // FileInfo[] from the header
 *   pkg.headerBlob()                        // immutable header blob (rpmdb form)
 *   for await (const e of pkg.entries())    // PayloadEntry; consume e.content before the next
 *   await verifyRpm('x.rpm', { keyFiles })  // digests + OpenPGP signatures
 *   await extractRpm('x.rpm', 'dir')        // rpm2cpio | cpio -idm, atomically
 */
export { openRpm, RpmPackage, workerDecoding, type RpmLayout, type LeadInfo, type PayloadReadOptions } from './reader.js';
export { Header, parseHeader, headerSize, decodeText, type HeaderEntry, type TagValue } from './header.js';
export {
  packageInfo, fileList, dependencies, fileFlagNames, DEPENDENCY_KINDS, SCRIPT_KINDS,
  type PackageInfo, type FileInfo, type Dependency, type DependencyKind, type Script, type ScriptKind, type Trigger,
  type TriggerCondition, type ChangelogEntry,
} from './package.js';
export { payloadEntries, entryType, type PayloadEntry, type EntryType } from './payload.js';
export { detectCompression, decompress, type Compression } from './compression.js';
export { extractRpm, safeComponents, type ExtractOptions, type ExtractResult } from './extract.js';
export {
  verifyRpm, verifyPackage, packageSignatures, readKeys, assertVerified,
  type VerifyReport, type DigestCheck, type SignatureCheck, type SignatureInfo, type CheckStatus,
} from './verify.js';
export { RpmFormatError, RpmIntegrityError } from './errors.js';
export { Tag, SigTag, TagType, Sense, FileFlag, VerifyFlag, ScriptFlag, HashAlgo } from './tags.js';
