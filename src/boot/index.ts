/** Boot support: initramfs, module indexes, bootloaders (extlinux, GRUB BIOS, UEFI), kernels. */
export * from './kernel.js';
export { buildInitramfs, installInitramfs, initramfsPath, planModules, InitramfsError, BLOCK_DRIVERS, FS_MODULES, type Initramfs, type InitramfsOptions } from './initramfs.js';
export { indexModules, writeDepmodFiles, modulesDepText, modulesAliasText, dependencyClosure, installedKernels, DepmodError, type ModuleIndex, type KernelModule } from './depmod.js';
export { parseModinfo, moduleElf, ModuleError, type ModInfo } from './modinfo.js';
export { extlinuxFromTree, stageExtlinuxFiles, installExtlinux, extlinuxConf, patchExtlinux, extractExtlinuxPayload, ExtlinuxError, type FileBlockMap, type ExtlinuxPayload } from './extlinux.js';
export { grubPcFromTree, coreImageFor, installGrubBios, buildCoreImage, CORE_MODULES, GrubError } from './grub-bios.js';
export { systemdBootEsp, grubEfiEsp, grubCfg, entryToken, UefiError, type EspFile, type GrubConfig, type KernelEntry } from './uefi.js';
export { NewcWriter } from './cpio.js';
