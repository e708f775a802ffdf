/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * The layouts shared by the BPF programs and the managed engine.
 * The managed mirror lives in Accel.Native/Abi/; a test compares the two sizes.
 * Changing anything here changes the object's hash, and with it the pin directory:
 * services built from different objects never share a map.
 */
#ifndef ACCEL_ABI_H
#define ACCEL_ABI_H

#include <linux/types.h>

/* Identity of one end of one TCP connection, built by accel_sockops from the kernel's own view of the
 * socket at establishment (user space never writes a key). A connection is named by what both of its ends see
 * alike, even through NAT of the server's address (DNAT: a Kubernetes ClusterIP through kube-proxy): the
 * connecting end's address and port, and both initial sequence numbers, which address translation
 * leaves alone. The accepting end's address and port are not in it: the connecting end may know them only as a
 * VIP. server_end tells the connection's two ends apart.
 * client_ip is IPv6 in network byte order (IPv4 as ::ffff:a.b.c.d), client_port in host order.
 * netns_cookie is the socket's network namespace cookie for loopback peers (two namespaces may hold the same
 * loopback connection) and 0 otherwise.
 * client_seq/server_seq are each end's ISN + 1 (snd_nxt/rcv_nxt at establishment). They tell apart two
 * connections from one client address and port: to two servers (connect() shares a local port between
 * destinations), or one after the other (a socket stays in the sockhash until close(), also after its connection
 * ended; without them a new connection would redirect into the old socket). Both are chosen by the kernel, per
 * connection, from a keyed hash of its addresses and a clock, so two live connections share a key only if 64 bits
 * of them match by chance. A client whose own address is rewritten (SNAT, masquerade) gets a key its server
 * never sees, and both ends use TCP. */
struct accel_key {
	__u32 client_ip[4];
	__u32 client_port;
	__u32 server_end;     /* 1 for the accepting end's socket, 0 for the connecting end's */
	__u64 netns_cookie;
	__u32 client_seq;
	__u32 server_seq;
};

/* Written by user space, or copied from accel_scope by accel_sock_create; inherited by accepted sockets
 * (BPF_F_CLONE). */
struct accel_sock_config {
	__u64 owner;          /* random id of the engine instance that opted the socket in */
	__u32 flags;          /* ACCEL_CFG_* */
	__u32 backlog_kib;    /* bound on this socket's redirected-but-unread bytes at its peer; 0: default */
	__u32 tracker;        /* 1 + the tracker block in accel_track of the engine whose tracker reports this socket's
	                       * reads; 0: none */
	__u32 tgid;           /* written by accel_whoami: the binding process's id in the initial pid namespace */
};

#define ACCEL_DEFAULT_BACKLOG_KIB 4096u

#define ACCEL_CFG_OPT_IN      1u /* sock_ops inserts the socket when it is established */
#define ACCEL_CFG_REPORTS     2u /* this socket's reader reports what it consumed (the library's transports do, and
                                  * the engine's tracker does for the sockets of a process in scope): its peer's
                                  * writer may wait for room instead of leaving the fast path */
#define ACCEL_CFG_WHOAMI      4u /* a probe: accel_whoami writes the binding process's tgid into the config */
#define ACCEL_CFG_WINDOW      8u /* a redirect verdict covers up to ACCEL_WINDOW_BYTES of this socket's next sends
                                  * (bpf_msg_apply_bytes), so the program runs once per window instead of once per send.
                                  * Only for writers that count what they send (the library's transports): the program
                                  * does not see the sends inside a window, and their writer settles the last one */

/* The most one redirect verdict covers (ACCEL_CFG_WINDOW). The kernel reuses the verdict and its target socket for the
 * socket's sends until the window is used up, then runs the program again. */
#define ACCEL_WINDOW_BYTES    65536u

/* accel_consumed values, one per reader (keyed by the reader's key), created by accel_sockops at insertion. */
struct accel_flow {
	__u64 consumed;       /* the reader's running total of bytes read; top bit: that reader reports at all (set by
	                       * accel_sockops from ACCEL_CFG_REPORTS; reports keep it) */
	__u64 sent;           /* the peer writer's redirected total, published by accel_msg once the writer is past a
	                       * quarter of its bound: every byte of it is in the reader's queue or read, so
	                       * sent - FIONREAD is a lower bound of what the reader consumed (the tracker's formula) */
	__u32 tracker;        /* from the reader's config: 1 + its engine's tracker block, 0: none */
	__u32 slot;           /* 1 + the reader's slot in accel_track; 0: none (yet). With a tracker, assigned by it, and
	                       * accel_msg publishes the writer's total there; without (a reader that reports itself),
	                       * assigned by the reader's engine, which writes tag << 48 | its running total there from
	                       * then on, without a syscall, and accel_msg reads it */
	__u32 tag;            /* the slot's tag (16 bits), so a write for an earlier user of the slot is recognised */
	__u32 reserved;
};

#define ACCEL_CONSUMED_REPORTS (1ull << 63)
#define ACCEL_CONSUMED_MASK    (ACCEL_CONSUMED_REPORTS - 1)

/* accel_track (mmapable array): the engines' trackers read it without a syscall. Each tracker owns one or more blocks
 * of ACCEL_TRACK_BLOCK entries: entry ACCEL_TRACK_WAITING of its first block counts writers near their bound whose
 * reader has no slot yet (the tracker then looks for new sockets), entry ACCEL_TRACK_ABSENT of its first block counts
 * first sends that found no peer from sockets with no slot yet (the tracker then looks for new sockets, to take them
 * out of the map), entry ACCEL_TRACK_CHANGED of every block counts writes to that block's slots, and the entries from
 * ACCEL_TRACK_FIRST_SLOT on hold tag << 48 | sent for one tracked reader each, tag << 48 | ACCEL_TRACK_CLOSED once its
 * connection closed, or tag << 48 | ACCEL_TRACK_PEER_ABSENT once its own first send found no peer. An engine also takes
 * blocks for the readers of its process that report themselves (the library's transports): their slots hold
 * tag << 48 | the reader's running total, written by the reader, and tag << 48 | ACCEL_TRACK_CLOSED once accel_sockops
 * saw the connection close, after which the engine gives the slot to another socket. The programs write a slot only while
 * it holds the tag of the entry that names it: its engine writes the tag first, one past the slot's last (a slot keeps its
 * tag while free, whoever holds its block). 256 blocks (2 MiB): one per
 * engine covers a node's pods (Kubernetes' default is 110 per node) with room for engines that need several. */
#define ACCEL_TRACK_BLOCK      1024u
#define ACCEL_TRACK_BLOCKS     256u
#define ACCEL_TRACK_WAITING    0u
#define ACCEL_TRACK_CHANGED    1u
#define ACCEL_TRACK_ABSENT     2u
#define ACCEL_TRACK_FIRST_SLOT 3u
#define ACCEL_TRACK_SENT_MASK  ((1ull << 48) - 1)
#define ACCEL_TRACK_CLOSED     (1ull << 47) /* in a slot: the reader's connection closed (sent totals stay below it) */
#define ACCEL_TRACK_PEER_ABSENT (ACCEL_TRACK_CLOSED | 1) /* in a slot: nothing will be redirected to the reader (its own
                                                       * first send found no peer), which may leave the map */

/* Written by the programs only: the sticky per-direction decision and this socket's figures. */
struct accel_sock_state {
	__u64 owner;
	__u32 verdict;        /* ACCEL_VERDICT_* */
	__u32 reason;         /* ACCEL_REASON_*, why the verdict is TCP */
	__u32 flags;          /* ACCEL_STATE_* */
	__u32 window;         /* bytes of the open window (ACCEL_CFG_WINDOW) beyond the send that opened it: not yet counted
	                       * in redirected_bytes. The program runs again only once the kernel has used the whole window,
	                       * and counts it then; a window still open when the connection ends is settled by its writer */
	__u64 redirected_msgs;
	__u64 redirected_bytes;
	__u64 tcp_msgs;
	__u64 tcp_bytes;
	struct accel_key key; /* the socket's own key in the sockhash */
	__u32 backlog_limit;  /* bytes; fixed at the first send */
	__u32 join;           /* ACCEL_JOIN_*: what accel_sockops did with the socket */
	__s32 insert_error;   /* errno of a failed insertion */
	__u32 reserved2;
	__u64 left_ns;        /* CLOCK_MONOTONIC when a redirected direction moved to TCP; 0 while it has not */
	__u64 consumed_seen;  /* the peer reader's total as last read from accel_consumed: a lower bound, so the map is
	                       * only read again when the bound might be near */
	struct accel_key peer; /* the peer's key: this socket's own seen from the other end */
};

#define ACCEL_JOIN_NONE           0u
#define ACCEL_JOIN_INSERTED       1u
#define ACCEL_JOIN_SKIPPED_REMOTE 2u /* the peer cannot be on this host */
#define ACCEL_JOIN_SKIPPED_EARLY  3u /* data left before establishment (TCP Fast Open) */
#define ACCEL_JOIN_FAILED         4u /* the sockhash refused it (insert_error) */
#define ACCEL_JOIN_SKIPPED_PLAIN_PEER 5u /* accepted from a peer that is not in the map (its process does not use the
                                          * fast path): would only pay the sk_msg path for a verdict of TCP */

#define ACCEL_VERDICT_UNDECIDED 0u
#define ACCEL_VERDICT_REDIRECT  1u
#define ACCEL_VERDICT_TCP       2u

#define ACCEL_REASON_NONE           0u
#define ACCEL_REASON_PEER_ABSENT    1u /* at the first send the peer was not in the map */
#define ACCEL_REASON_NOT_INSERTED   2u /* the socket has no key of its own in the map */
#define ACCEL_REASON_PEER_GONE      3u /* the peer left the map after redirecting began */
#define ACCEL_REASON_BACKLOG        4u /* the peer left more than the bound of redirected bytes unread */

#define ACCEL_STATE_FIRST_SEND      2u /* transient: the decision is being made by this send */
#define ACCEL_STATE_WINDOW          4u /* from the first send: the socket's config asked for windows (ACCEL_CFG_WINDOW) */

/* Per engine instance (owner), per CPU: the process-wide figures. */
struct accel_owner_stats {
	__u64 redirected_msgs;
	__u64 redirected_bytes;
	__u64 tcp_msgs;
	__u64 tcp_bytes;
	__u64 inserted;        /* sockets sock_ops put into the map */
	__u64 insert_failed;   /* sockets sock_ops could not put into the map (full, duplicate key) */
	__u64 skipped_remote;  /* opted-in sockets whose peer cannot be on this host */
	__u64 degraded;        /* directions that switched from redirect to TCP while their peer was open (the bound) */
	__u64 skipped_plain_peer; /* accepted sockets whose peer is not in the map (ACCEL_JOIN_SKIPPED_PLAIN_PEER) */
};

/* One per engine instance on the host (key: owner), written by user space: which services share the map. */
struct accel_service {
	char name[32];        /* service name: configured, or the program's name */
	char host[64];        /* host name as the engine sees it: the container or pod, in a container */
	__u32 pid;            /* in the engine's own pid namespace */
	__u32 reserved;
};

/* LPM trie key for the ranges of peers that may be on this host. */
struct accel_prefix {
	__u32 prefixlen;
	__u8 addr[16];
};

#define ACCEL_SOCKHASH_MAX_ENTRIES 65536
#define ACCEL_CONSUMED_MAX_ENTRIES 131072
#define ACCEL_OWNERS_MAX_ENTRIES   4096
#define ACCEL_SERVICES_MAX_ENTRIES 1024
#define ACCEL_PREFIXES_MAX_ENTRIES 1024
#define ACCEL_SCOPE_MAX_ENTRIES    4096

/* How the loader learns about maps: one of these per map in section "accel_maps". */
struct accel_map_def {
	__u32 type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	__u32 flags;
};

#endif
