/**
 * Whose rate-limit bucket a client address fills: an IPv4 address, or an IPv6 address's /64. One
 * IPv6 host commonly holds a whole /64 (SLAAC and privacy addresses), so a bucket per IPv6 address
 * would give it a fresh bucket with every request. An IPv4-mapped IPv6 address (a dual-stack
 * listener's view of an IPv4 client) counts as the IPv4 address.
 */
import ipaddr from 'ipaddr.js';

export function clientSubject(address: string | undefined): string {
  if (address === undefined || !ipaddr.isValid(address)) return `address:${address ?? 'unknown'}`;
  const ip = ipaddr.process(address);
  if (ip.kind() === 'ipv4') return ip.toString();
  const prefix = (ip as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16));
  return `${prefix.join(':')}::/64`;
}
