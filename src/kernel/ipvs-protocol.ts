/**
 * The IPVS generic netlink protocol's numbers: commands, attribute types, flags and limits from
 * include/uapi/linux/ip_vs.h, and the netlink / generic netlink framing constants (linux/netlink.h,
 * linux/genetlink.h) that requests and replies use. Constants only: ipvs-encode.ts writes requests
 * with them and ipvs-decode.ts reads replies with them.
 *
 * Wire facts (include/uapi/linux/ip_vs.h, net/netfilter/ipvs/ip_vs_ctl.c):
 * - integers are host order (isLE), except ports (service, destination, GUE tunnel) and the IPv4
 *   netmask;
 * - addresses are sent as 4 or 16 bytes and always come back as 16;
 * - FLAGS is {flags, mask}.
 */

export const IPVS_GENL_NAME = "IPVS";
export const IPVS_GENL_VERSION = 1;

export const GENL_ID_CTRL = 16;
export const CTRL_CMD_GETFAMILY = 3;
export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;

export const NLMSG = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4 } as const;
export const NLM_F = { REQUEST: 0x1, MULTI: 0x2, ACK: 0x4, DUMP: 0x300 } as const;
export const NLMSG_HDRLEN = 16;
export const GENL_HDRLEN = 4;

export const IPVS_CMD = {
  NEW_SERVICE: 1,
  SET_SERVICE: 2,
  DEL_SERVICE: 3,
  GET_SERVICE: 4,
  NEW_DEST: 5,
  SET_DEST: 6,
  DEL_DEST: 7,
  GET_DEST: 8,
  NEW_DAEMON: 9,
  DEL_DAEMON: 10,
  GET_DAEMON: 11,
  SET_CONFIG: 12,
  GET_CONFIG: 13,
  SET_INFO: 14,
  GET_INFO: 15,
  ZERO: 16,
  FLUSH: 17,
} as const;

export const IPVS_CMD_ATTR = {
  SERVICE: 1,
  DEST: 2,
  DAEMON: 3,
  TIMEOUT_TCP: 4,
  TIMEOUT_TCP_FIN: 5,
  TIMEOUT_UDP: 6,
} as const;

export const IPVS_SVC_ATTR = {
  AF: 1,
  PROTOCOL: 2,
  ADDR: 3,
  PORT: 4,
  FWMARK: 5,
  SCHED_NAME: 6,
  FLAGS: 7,
  TIMEOUT: 8,
  NETMASK: 9,
  STATS: 10,
  PE_NAME: 11,
  STATS64: 12,
} as const;

export const IPVS_DEST_ATTR = {
  ADDR: 1,
  PORT: 2,
  FWD_METHOD: 3,
  WEIGHT: 4,
  U_THRESH: 5,
  L_THRESH: 6,
  ACTIVE_CONNS: 7,
  INACT_CONNS: 8,
  PERSIST_CONNS: 9,
  STATS: 10,
  ADDR_FAMILY: 11,
  STATS64: 12,
  TUN_TYPE: 13,
  TUN_PORT: 14,
  TUN_FLAGS: 15,
} as const;

export const IPVS_DAEMON_ATTR = {
  STATE: 1,
  MCAST_IFN: 2,
  SYNC_ID: 3,
  SYNC_MAXLEN: 4,
  MCAST_GROUP: 5,
  MCAST_GROUP6: 6,
  MCAST_PORT: 7,
  MCAST_TTL: 8,
} as const;

export const IPVS_INFO_ATTR = { VERSION: 1, CONN_TAB_SIZE: 2 } as const;

export const IPVS_STATS_ATTR = {
  CONNS: 1,
  INPKTS: 2,
  OUTPKTS: 3,
  INBYTES: 4,
  OUTBYTES: 5,
  CPS: 6,
  INPPS: 7,
  OUTPPS: 8,
  INBPS: 9,
  OUTBPS: 10,
  PAD: 11,
} as const;

export const AF = { INET: 2, INET6: 10 } as const;
export const IPPROTO = { TCP: 6, UDP: 17, SCTP: 132 } as const;

export const SVC_FLAG = {
  PERSISTENT: 0x1,
  HASHED: 0x2,
  ONEPACKET: 0x4,
  SCHED1: 0x8,
  SCHED2: 0x10,
  SCHED3: 0x20,
} as const;

export const FWD_METHOD = { NAT: 0, Local: 1, Tunnel: 2, DirectRouting: 3, Bypass: 4 } as const;
export const FWD_MASK = 0x7;
export const TUN_TYPE = { IPIP: 0, GUE: 1, GRE: 2 } as const;
export const TUN_FLAG = { CSUM: 0x1, REMCSUM: 0x2 } as const;
export const DAEMON_STATE = { Master: 1, Backup: 2 } as const;

export const SCHED_NAME_MAXLEN = 16;
export const PE_NAME_MAXLEN = 16;
export const IFNAME_MAXLEN = 16;

/** Netlink integers are in host order: whether this host is little-endian. */
export const isLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
