/**
 * OVA (DMTF OVF 1.x package): a ustar archive whose members are, in this
 * order, the OVF descriptor, the streamOptimized VMDK disk and the SHA-256
 * manifest (.mf) — the order the OVF spec requires for streaming import. The
 * descriptor is built with xml2js; the VMDK is written first to a temporary
 * file beside the output because the descriptor names its size.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ByteSource } from '../src/disk/target.js';
import { writeVmdk } from './vmdk.js';
import { ustarHeader } from './tar.js';

export interface OvaOptions {
  /** Appliance (VirtualSystem) name; also names the members. */
  name: string;
  seed?: string;
  /** The members' modification time, in Unix seconds (default SOURCE_DATE_EPOCH, else 0). */
  epoch?: number;
  memoryMiB?: number;
  cpus?: number;
}

const OVF_NS = 'http://schemas.dmtf.org/ovf/envelope/1';
const RASD_NS = 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData';
const VSSD_NS = 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData';
const VMDK_STREAM = 'http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized';

/** The OVF descriptor for one disk of `capacity` bytes stored in `vmdkName` (`vmdkSize` bytes). */
export async function ovfDescriptor(o: OvaOptions, vmdkName: string, vmdkSize: number, capacity: number): Promise<string> {
  const { default: xml2js } = await import('xml2js');
  const item = (id: number, type: number, name: string, extra: Record<string, unknown> = {}) => ({
    'rasd:ElementName': name, 'rasd:InstanceID': String(id), 'rasd:ResourceType': String(type), ...extra,
  });
  const env = {
    Envelope: {
      $: { 'xmlns': OVF_NS, 'xmlns:ovf': OVF_NS, 'xmlns:rasd': RASD_NS, 'xmlns:vssd': VSSD_NS, 'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance', 'ovf:version': '1.0' },
      References: { File: { $: { 'ovf:href': vmdkName, 'ovf:id': 'file1', 'ovf:size': String(vmdkSize) } } },
      DiskSection: {
        Info: 'Virtual disk information',
        Disk: { $: { 'ovf:capacity': String(capacity), 'ovf:capacityAllocationUnits': 'byte', 'ovf:diskId': 'vmdisk1', 'ovf:fileRef': 'file1', 'ovf:format': VMDK_STREAM } },
      },
      NetworkSection: { Info: 'Logical networks', Network: { $: { 'ovf:name': 'nat' }, Description: 'NAT network' } },
      VirtualSystem: {
        $: { 'ovf:id': o.name },
        Info: 'A virtual machine',
        Name: o.name,
        OperatingSystemSection: { $: { 'ovf:id': '101' }, Info: 'The guest operating system', Description: 'Linux (64-bit)' },
        VirtualHardwareSection: {
          Info: 'Virtual hardware requirements',
          System: { 'vssd:ElementName': 'Virtual Hardware Family', 'vssd:InstanceID': '0', 'vssd:VirtualSystemIdentifier': o.name, 'vssd:VirtualSystemType': 'vmx-10' },
          Item: [
            item(1, 3, `${o.cpus ?? 1} virtual CPU(s)`, { 'rasd:AllocationUnits': 'hertz * 10^6', 'rasd:VirtualQuantity': String(o.cpus ?? 1) }),
            item(2, 4, `${o.memoryMiB ?? 1024} MB of memory`, { 'rasd:AllocationUnits': 'byte * 2^20', 'rasd:VirtualQuantity': String(o.memoryMiB ?? 1024) }),
            item(3, 6, 'SCSI Controller 0', { 'rasd:Address': '0', 'rasd:ResourceSubType': 'lsilogic' }),
            item(4, 17, 'Hard Disk 1', { 'rasd:AddressOnParent': '0', 'rasd:HostResource': 'ovf:/disk/vmdisk1', 'rasd:Parent': '3' }),
            item(5, 10, 'Network adapter 1', { 'rasd:AutomaticAllocation': 'true', 'rasd:Connection': 'nat', 'rasd:ResourceSubType': 'E1000' }),
          ],
        },
      },
    },
  };
  return new xml2js.Builder({ xmldec: { version: '1.0', encoding: 'UTF-8' }, renderOpts: { pretty: true, indent: '  ', newline: '\n' } }).buildObject(env) + '\n';
}

const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);

/** Write `source` as an OVA at `path`. */
export async function writeOva(source: ByteSource, path: string, o: OvaOptions): Promise<void> {
  const base = o.name.replace(/[^A-Za-z0-9._-]/g, '_') || 'disk';
  const vmdkName = `${base}-disk1.vmdk`;
  const ovfName = `${base}.ovf`;
  const mfName = `${base}.mf`;
  const vmdkTmp = `${path}.vmdk.tmp`;
  try {
    await writeVmdk(source, vmdkTmp, { subformat: 'streamOptimized', name: vmdkName, seed: o.seed, adapterType: 'lsilogic' });
    const vmdkSize = (await stat(vmdkTmp)).size;
    const ovf = Buffer.from(await ovfDescriptor(o, vmdkName, vmdkSize, source.size), 'utf8');
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const vmdkHash = createHash('sha256');
    async function* gen(): AsyncIterable<Buffer> {
      yield ustarHeader(ovfName, ovf.length, o.epoch);
      yield ovf; yield pad(ovf.length);
      yield ustarHeader(vmdkName, vmdkSize, o.epoch);
      for await (const c of createReadStream(vmdkTmp, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) { vmdkHash.update(c); yield c; }
      yield pad(vmdkSize);
      const mf = Buffer.from(`SHA256(${ovfName})= ${sha(ovf)}\nSHA256(${vmdkName})= ${vmdkHash.digest('hex')}\n`, 'utf8');
      yield ustarHeader(mfName, mf.length, o.epoch);
      yield mf; yield pad(mf.length);
      yield Buffer.alloc(1024);
    }
    await pipeline(Readable.from(gen()), createWriteStream(path));
  } finally {
    await rm(vmdkTmp, { force: true });
  }
}
