/**
 * Partition type names. GPT type GUIDs come from the UEFI spec (ESP, BIOS
 * boot is GRUB's) and the Discoverable Partitions Specification (UAPI.2:
 * root-*, usr-*, esp, xbootldr, swap, home, srv, var, tmp); MBR type bytes
 * are the conventional IBM PC codes. Names are what image definitions use.
 */
import { isGuid, normalizeGuid } from './guid.js';

export const GPT_TYPES: Readonly<Record<string, string>> = {
  'esp': 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  'xbootldr': 'BC13C2FF-59E6-4262-A352-B275FD6F7172',
  'bios-boot': '21686148-6449-6E6F-744E-656564454649',
  'prep': '9E1A2D38-C612-4316-AA26-8B49521E5A8B',
  'linux': '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
  'swap': '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F',
  'home': '933AC7E1-2EB4-4F13-B844-0E14E2AEF915',
  'srv': '3B8F8425-20E0-4F3B-907F-1A25A76F98E8',
  'var': '4D21B016-B534-45C2-A9FB-5C16E091FD2D',
  'tmp': '7EC6F557-3BC5-4ACA-B293-16EF5DF639D1',
  'lvm': 'E6D6D379-F507-44C2-A23C-238F2A3DF928',
  'raid': 'A19D880F-05FC-4D3B-A006-743F0F84911E',
  'luks': 'CA7D7CCB-63ED-4C53-861C-1742536059CC',
  'root-x86': '44479540-F297-41B2-9AF7-D131D5F0458A',
  'root-x86-64': '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709',
  'root-arm': '69DAD710-2CE4-4E3C-B16C-21A1D49ABED3',
  'root-arm64': 'B921B045-1DF0-41C3-AF44-4C6F280D3FAE',
  'root-ppc64le': 'C31C45E6-3F39-412E-80FB-4809C4980599',
  'root-riscv64': '72EC70A6-CF74-40E6-BD49-4BDA08E8F224',
  'root-s390x': '5EEAD9A9-FE09-4A1E-A1D7-520D00531306',
  'usr-x86': '75250D76-8CC6-458E-BD66-BD47CC81A812',
  'usr-x86-64': '8484680C-9521-48C6-9C11-B0720656F69E',
  'usr-arm': '7D0359A3-02B3-4F0A-865C-654403E70625',
  'usr-arm64': 'B0E01050-EE5F-4390-949A-9101B17104E9',
  'usr-ppc64le': '15BB03AF-77E7-4D4A-B12B-C0D084F7491C',
  'usr-riscv64': 'BEAEC34B-8442-439B-A40B-984381ED097D',
  'usr-s390x': '8A4F5770-50AA-4ED3-874A-99B710DB6FEA',
  'root-x86-64-verity': '2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5',
  'root-arm64-verity': 'DF3300CE-D69F-4C92-978C-9BFB0F38D820',
  'usr-x86-64-verity': '77FF5F63-E7B6-4633-ACF4-1565B864C0E6',
  'usr-arm64-verity': '6E11A4E7-FBCA-4DED-B9E9-E1A512BB664E',
  'microsoft-basic-data': 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
  'microsoft-reserved': 'E3C9E316-0B5C-4DB8-817D-F92DF00215AE',
  'apple-hfs': '48465300-0000-11AA-AA11-00306543ECAC',
  'apple-boot': '426F6F74-0000-11AA-AA11-00306543ECAC',
};

/** MBR partition type bytes by name. */
export const MBR_TYPES: Readonly<Record<string, number>> = {
  'empty': 0x00,
  'fat12': 0x01,
  'fat16-small': 0x04,
  'extended': 0x05,
  'fat16': 0x06,
  'ntfs': 0x07,
  'fat32': 0x0b,
  'fat32-lba': 0x0c,
  'fat16-lba': 0x0e,
  'extended-lba': 0x0f,
  'prep': 0x41,
  'swap': 0x82,
  'linux': 0x83,
  'extended-linux': 0x85,
  'lvm': 0x8e,
  'gpt-protective': 0xee,
  'esp': 0xef,
  'raid': 0xfd,
};

/** Container types that hold an EBR chain (logical partitions). */
export const MBR_EXTENDED_TYPES: ReadonlySet<number> = new Set([0x05, 0x0f, 0x85]);

/** Names usable with either table map onto the nearest MBR code. */
const MBR_FROM_GPT_NAME: Readonly<Record<string, number>> = {
  'xbootldr': 0xea, 'home': 0x83, 'srv': 0x83, 'var': 0x83, 'tmp': 0x83, 'luks': 0x83,
  'microsoft-basic-data': 0x07, 'bios-boot': 0xef,
};

const GPT_NAME_BY_GUID = new Map(Object.entries(GPT_TYPES).map(([k, v]) => [v, k]));
const MBR_NAME_BY_CODE = new Map(Object.entries(MBR_TYPES).map(([k, v]) => [v, k]));

/** Resolve a GPT type given as a name or a GUID; undefined when unknown. */
export function gptTypeGuid(type: string): string | undefined {
  if (isGuid(type)) return normalizeGuid(type);
  return GPT_TYPES[type.toLowerCase()];
}

/** Resolve an MBR type given as a name, a number, or a hex string (`0x83`, `83`). */
export function mbrTypeCode(type: string | number): number | undefined {
  if (typeof type === 'number') return Number.isInteger(type) && type >= 0 && type <= 0xff ? type : undefined;
  const t = type.toLowerCase();
  if (t in MBR_TYPES) return MBR_TYPES[t];
  if (t in MBR_FROM_GPT_NAME) return MBR_FROM_GPT_NAME[t];
  if (t.startsWith('root-') || t.startsWith('usr-')) return 0x83;
  if (/^(0x)?[0-9a-f]{1,2}$/.test(t)) return parseInt(t.replace(/^0x/, ''), 16);
  return undefined;
}

export function gptTypeName(guid: string): string | undefined {
  return GPT_NAME_BY_GUID.get(guid.toUpperCase());
}

export function mbrTypeName(code: number): string | undefined {
  return MBR_NAME_BY_CODE.get(code);
}
