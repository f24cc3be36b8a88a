/**
 * The two noVNC URLs of SmartX CloudTower's guide "Fetching the VNC information": straight to the
 * cluster's websockify, or through the tower's own proxy. Both are for people on the cluster's LAN.
 */

/** The fields of CloudTower's `vnc` GraphQL query. */
export interface VncInfo {
  vm_uuid: string;
  host_ip: string;
  cluster_ip: string;
  /** 32 hex characters, for the direct form. */
  raw_token: string;
  /** base64 (may hold + / =), for the proxy form. */
  token: string;
}

/** An address as a URL host: IPv6 literals need brackets. */
function urlHost(address: string): string {
  return address.includes(":") && !address.startsWith("[") ? `[${address}]` : address;
}

/**
 * Percent-encodes a query value. encodeURIComponent already turns + / = into %2B %2F %3D; the few
 * characters it leaves alone that some proxies mangle (! ' ( ) *) are encoded too.
 */
export function encodeQueryValue(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `wss://<cluster_ip>/websockify/?uuid=<vm_uuid>&token=<raw_token>&host=<host_ip>` */
export function directVncUrl(info: VncInfo): string {
  return (
    `wss://${urlHost(info.cluster_ip)}/websockify/` +
    `?uuid=${encodeQueryValue(info.vm_uuid)}&token=${encodeQueryValue(info.raw_token)}&host=${encodeQueryValue(info.host_ip)}`
  );
}

/** `wss://<tower>/websockify/?token=<percent-encoded token>&uuid=<vm_uuid>&host=<host_ip>` */
export function proxiedVncUrl(towerAddress: string, info: VncInfo): string {
  return (
    `wss://${urlHost(towerAddress)}/websockify/` +
    `?token=${encodeQueryValue(info.token)}&uuid=${encodeQueryValue(info.vm_uuid)}&host=${encodeQueryValue(info.host_ip)}`
  );
}
