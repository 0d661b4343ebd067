export { writeFat, minimalFatSize } from './writer.js';
export type { FatWriteOptions, FatWriteResult } from './writer.js';
export { FatFilesystem, openFat } from './reader.js';
export type { FatDirEntry, FatVolumeInfo } from './reader.js';
export { chooseGeometry } from './geometry.js';
export type { FatGeometry, FatType, GeometryOptions } from './geometry.js';
export { FatError } from './errors.js';
export { shortNameChecksum } from './names.js';
