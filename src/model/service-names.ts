/**
 * Port names as ipvsadm reads and prints them without -n: getservbyname / getservbyport over the
 * services database (/etc/services on glibc systems), looked up per protocol ("tcp", "udp", "sctp").
 * Pure: the caller hands in the text of /etc/services (the CLI reads the file).
 */

export type ServiceProtocol = "tcp" | "udp" | "sctp";

/** The port of a service name for a protocol (getservbyname), or undefined when unknown. */
export type ServicePortLookup = (name: string, protocol: ServiceProtocol) => number | undefined;

/**
 * Reads an /etc/services text: `name port/protocol [aliases...] [# comment]`. The first line naming a
 * name (or alias) for a protocol wins, as with glibc's files backend. Lines that do not read are skipped.
 */
export function parseEtcServices(text: string): ServicePortLookup {
  const ports = new Map<string, number>();
  for (const raw of text.split("\n")) {
    const hash = raw.indexOf("#");
    const words = (hash >= 0 ? raw.slice(0, hash) : raw).split(/[ \t\r]+/).filter((w) => w !== "");
    const [name, portProto, ...aliases] = words;
    const m = portProto === undefined ? null : /^(\d{1,5})\/([A-Za-z0-9-]+)$/.exec(portProto);
    if (!name || !m) continue;
    const port = Number(m[1]);
    if (port > 65535) continue;
    const protocol = m[2]!.toLowerCase();
    for (const n of [name, ...aliases]) {
      const key = `${n}/${protocol}`;
      if (!ports.has(key)) ports.set(key, port);
    }
  }
  return (name, protocol) => ports.get(`${name}/${protocol}`);
}

/**
 * Used when no services database can be read: the names Debian's netbase gives the ports ipvsadm
 * users meet most (tcp and udp alike; sctp has none).
 */
export const FALLBACK_SERVICE_NAMES = `
ftp 21/tcp
ssh 22/tcp
ssh 22/udp
telnet 23/tcp
smtp 25/tcp mail
domain 53/tcp
domain 53/udp
http 80/tcp www
pop3 110/tcp pop-3
ntp 123/udp
imap2 143/tcp imap
snmp 161/udp
ldap 389/tcp
ldap 389/udp
https 443/tcp
https 443/udp
syslog 514/udp
submission 587/tcp
ldaps 636/tcp
imaps 993/tcp
pop3s 995/tcp
mysql 3306/tcp
sip 5060/tcp
sip 5060/udp
http-alt 8080/tcp webcache
`;
