/**
 * The pool simulator's model: hosts, VMs and their consoles, sessions, and the XAPI records of
 * each class, as the XenAPI (`xenapi.ts`) and the console handler (`console-connect.ts`) see them.
 */
import { randomUUID } from "node:crypto";

export interface SimVm {
  uuid: string;
  name: string;
  powerState: "Running" | "Halted" | "Paused" | "Suspended";
  /** index into hosts; the host the VM is resident on (consoles live there) */
  host: number;
  /** console protocols the VM has, in XAPI order; default ["vt100", "rfb"] so the client must pick rfb */
  consoles?: ("rfb" | "vt100" | "rdp")[];
  isTemplate?: boolean;
  isControlDomain?: boolean;
}

export type Protocol = "rfb" | "vt100" | "rdp";

export interface HostObj {
  ref: string;
  uuid: string;
  address: string;
  name: string;
  certPem: string;
  keyPem: string;
  fingerprint: string;
}
export interface ConsoleObj {
  ref: string;
  uuid: string;
  protocol: Protocol;
  vm: VmObj;
}
export interface VmObj {
  ref: string;
  sim: SimVm;
  consoles: ConsoleObj[];
  domid: number;
}
export interface ClassImpl {
  /** refs, in a stable order */
  all(): string[];
  record(ref: string): Record<string, unknown> | undefined;
  byUuid(uuid: string): string | undefined;
  /** the fields of its records (for get_<field>) */
  fields: string[];
}

const VM_FIELDS = [
  "uuid", "allowed_operations", "current_operations", "name_label", "name_description", "power_state",
  "user_version", "is_a_template", "is_default_template", "is_a_snapshot", "domid", "resident_on", "affinity",
  "memory_static_max", "VCPUs_max", "is_control_domain", "consoles", "other_config", "tags",
];
const CONSOLE_FIELDS = ["uuid", "protocol", "location", "VM", "other_config"];
const HOST_FIELDS = [
  "uuid", "name_label", "name_description", "hostname", "address", "enabled", "API_version_major",
  "API_version_minor", "API_version_vendor", "resident_VMs", "other_config",
];
const POOL_FIELDS = ["uuid", "name_label", "name_description", "master", "other_config"];

export const NULL_REF = "OpaqueRef:NULL";
export const newRef = (): string => `OpaqueRef:${randomUUID()}`;

function defaultVms(hostCount: number): SimVm[] {
  const member = Math.min(1, hostCount - 1);
  const vms: SimVm[] = [
    { uuid: randomUUID(), name: "web-1", powerState: "Running", host: member },
    { uuid: randomUUID(), name: "web-2", powerState: "Running", host: member },
    { uuid: randomUUID(), name: "db-halted", powerState: "Halted", host: 0 },
    { uuid: randomUUID(), name: "Debian Bookworm 12", powerState: "Halted", host: 0, isTemplate: true, consoles: [] },
  ];
  for (let i = 0; i < hostCount; i++) {
    vms.push({
      uuid: randomUUID(),
      name: `Control domain on host: ${hostName(i)}`,
      powerState: "Running",
      host: i,
      isControlDomain: true,
    });
  }
  return vms;
}

function hostName(i: number): string {
  return `xcp-host-${i + 1}`;
}

export type ConsoleFault = 401 | 403 | 404 | 500 | 503 | "eof-after-200" | "no-reply";

export interface HostCertificate {
  certPem: string;
  keyPem: string;
  fingerprint: string;
}

export class PoolModel {
  readonly username: string;
  readonly password: string;
  readonly hosts: HostObj[];
  /** The VMs as the test sees them (its `pool.vms`). */
  readonly vms: SimVm[];
  readonly vmObjs: VmObj[];
  readonly consoles = new Map<string, ConsoleObj>();
  readonly sessions = new Map<string, { uuid: string; user: string }>();
  readonly faults = new Map<string, ConsoleFault>();
  readonly classes: Record<string, ClassImpl>;
  #poolRef = newRef();
  #poolUuid = randomUUID();
  #nextDomid = 1;

  constructor(
    options: { hosts: string[]; vms?: SimVm[]; username?: string; password?: string },
    certs: HostCertificate[],
  ) {
    this.username = options.username ?? "root";
    this.password = options.password ?? "secret";
    this.hosts = options.hosts.map((address, i) => {
      const c = certs[i]!;
      return { ref: newRef(), uuid: randomUUID(), address, name: hostName(i), ...c };
    });
    this.vms = (options.vms ?? defaultVms(options.hosts.length)).map((vm) => ({
      ...vm,
      consoles: [...(vm.consoles ?? ["vt100", "rfb"])],
      isTemplate: vm.isTemplate ?? false,
      isControlDomain: vm.isControlDomain ?? false,
    }));
    this.vmObjs = this.vms.map((sim) => {
      const vm: VmObj = { ref: newRef(), sim, consoles: [], domid: sim.isControlDomain ? 0 : this.#nextDomid++ };
      this.makeConsoles(vm);
      return vm;
    });
    this.classes = {
      VM: {
        all: () => this.vmObjs.map((v) => v.ref),
        record: (ref) => {
          const vm = this.vmObjs.find((v) => v.ref === ref);
          return vm && this.vmRecord(vm);
        },
        byUuid: (uuid) => this.vmObjs.find((v) => v.sim.uuid === uuid)?.ref,
        fields: VM_FIELDS,
      },
      console: {
        all: () => [...this.consoles.keys()],
        record: (ref) => {
          const c = this.consoles.get(ref);
          return c && this.consoleRecord(c);
        },
        byUuid: (uuid) => [...this.consoles.values()].find((c) => c.uuid === uuid)?.ref,
        fields: CONSOLE_FIELDS,
      },
      host: {
        all: () => this.hosts.map((h) => h.ref),
        record: (ref) => {
          const h = this.hosts.find((x) => x.ref === ref);
          return h && this.hostRecord(h);
        },
        byUuid: (uuid) => this.hosts.find((h) => h.uuid === uuid)?.ref,
        fields: HOST_FIELDS,
      },
      pool: {
        all: () => [this.#poolRef],
        record: (ref) => (ref === this.#poolRef ? this.poolRecord() : undefined),
        byUuid: (uuid) => (uuid === this.#poolUuid ? this.#poolRef : undefined),
        fields: POOL_FIELDS,
      },
    };
  }

  /** Move a VM to another host (its console uuids and refs change, like a migration). */
  migrate(vmUuid: string, host: number): void {
    const vm = this.vm(vmUuid);
    this.host(host);
    vm.sim.host = host;
    vm.domid = this.#nextDomid++;
    this.makeConsoles(vm);
  }

  host(i: number): HostObj {
    const h = this.hosts[i];
    if (!h) throw new RangeError(`XapiPool: no host ${i}`);
    return h;
  }

  vm(uuid: string): VmObj {
    const vm = this.vmObjs.find((v) => v.sim.uuid === uuid);
    if (!vm) throw new Error(`XapiPool: no VM ${uuid}`);
    return vm;
  }

  makeConsoles(vm: VmObj): void {
    for (const c of vm.consoles) this.consoles.delete(c.ref);
    vm.consoles = (vm.sim.consoles ?? []).map((protocol) => ({ ref: newRef(), uuid: randomUUID(), protocol, vm }));
    for (const c of vm.consoles) this.consoles.set(c.ref, c);
  }

  isLive(vm: VmObj): boolean {
    return vm.sim.powerState === "Running" || vm.sim.powerState === "Paused";
  }

  vmRecord(vm: VmObj): Record<string, unknown> {
    const live = this.isLive(vm);
    return {
      uuid: vm.sim.uuid,
      allowed_operations: [],
      current_operations: {},
      name_label: vm.sim.name,
      name_description: "",
      power_state: vm.sim.powerState,
      user_version: 1,
      is_a_template: vm.sim.isTemplate ?? false,
      is_default_template: false,
      is_a_snapshot: false,
      domid: live ? vm.domid : -1,
      resident_on: live ? this.host(vm.sim.host).ref : NULL_REF,
      affinity: NULL_REF,
      memory_static_max: 2147483648,
      VCPUs_max: 2,
      is_control_domain: vm.sim.isControlDomain ?? false,
      consoles: vm.consoles.map((c) => c.ref),
      other_config: {},
      tags: [],
    };
  }

  consoleLocation(c: ConsoleObj): string {
    return `https://${this.host(c.vm.sim.host).address}/console?uuid=${c.uuid}`;
  }

  consoleRecord(c: ConsoleObj): Record<string, unknown> {
    return { uuid: c.uuid, protocol: c.protocol, location: this.consoleLocation(c), VM: c.vm.ref, other_config: {} };
  }

  hostRecord(h: HostObj): Record<string, unknown> {
    const i = this.hosts.indexOf(h);
    return {
      uuid: h.uuid,
      name_label: h.name,
      name_description: "",
      hostname: h.name,
      address: h.address,
      enabled: true,
      API_version_major: 2,
      API_version_minor: 21,
      API_version_vendor: "XenSource",
      resident_VMs: this.vmObjs.filter((v) => this.isLive(v) && v.sim.host === i).map((v) => v.ref),
      other_config: {},
    };
  }

  poolRecord(): Record<string, unknown> {
    return { uuid: this.#poolUuid, name_label: "sim-pool", name_description: "", master: this.host(0).ref, other_config: {} };
  }
}
