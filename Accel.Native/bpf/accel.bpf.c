// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * The fast path. Two programs share one SOCKHASH:
 *
 *  accel_sockops  (cgroup sock_ops)  puts a socket that user space opted in into the map under its
 *                 own key (accel_abi.h: the connecting end's address and port and both initial sequence
 *                 numbers) the moment the kernel establishes it, before user space can write (an
 *                 accepted socket only when its peer is in the map: otherwise it could only pay the
 *                 sk_msg path, for a verdict of TCP).
 *  accel_msg      (sk_msg verdict)   on each sendmsg of a socket in the map, redirects the bytes into
 *                 the peer's receive queue, or lets them go through TCP.
 *
 * Process scope: accel_sock_create (cgroup sock_create) opts in every TCP socket a process in accel_scope creates,
 * with the config that process's engine wrote there; accel_whoami (cgroup post_bind4) tells an engine its process
 * id as these programs see it (the initial pid namespace's), which a process in a container cannot know otherwise.
 *
 * Ordering (KERNEL-FACTS 1): redirected bytes are read before bytes waiting in the TCP receive queue,
 * so a direction that has put any byte on TCP must never redirect afterwards. The decision is made
 * once per socket at its first send and is sticky: REDIRECT only if the peer is in the map, TCP otherwise,
 * for life. A socket is only ever inserted by accel_sockops at establishment, before user space can
 * write on it, so a socket in the map has never put a byte on TCP before its first decision. REDIRECT -> TCP later
 * (peer gone) is order-safe: the queued redirected bytes are older and are read first. A socket leaves the map before
 * it closes only when nothing was or can be redirected into it (a dropped psock discards its queue): an accepted one
 * whose peer has no entry, and one whose first send found no peer (user space removes it).
 *
 * Backlog (KERNEL-FACTS 2): a redirect never blocks the sender, so a receiver that stops reading would
 * let the kernel queue without bound. Each sender counts what it redirected; accel_consumed (fexit on
 * the function that dequeues redirected bytes) publishes what each receiver has read, under the
 * receiver's key. When redirected - consumed would pass the bound, the direction switches to TCP for
 * life (order-safe, see above), and TCP's flow control takes over. Where accel_consumed cannot be loaded
 * (no CAP_PERFMON, or tracing refused), readers report instead: the library's transports publish their first report
 * in accel_consumed and every later one in a slot of accel_track that the reader's engine gave them (memory stores,
 * no syscall), and the read tracker reports for the other sockets of a process in scope. A reader that reports
 * nothing is redirected into for its first <bound> bytes only.
 *
 * Windows (ACCEL_CFG_WINDOW, the library's transports): a redirect verdict covers up to ACCEL_WINDOW_BYTES of the
 * socket's next sends, within the room the bound leaves (bpf_msg_apply_bytes), and the kernel reuses it, and its target
 * socket, without running the program until the window is used up. Ordering holds: a direction only changes its verdict
 * at a run, and every byte of the window went by the redirect before it. The program counts a window's bytes at its next
 * run; a window still open when the connection ends is counted by its writer, which knows what it sent.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "accel_abi.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#define MSG_PEEK 2
#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define TCP_STATE_CLOSE 7

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define ACCEL_MAP(name, map_type, k, v, max, map_flags) \
	struct accel_map_def name SEC("accel_maps") = { \
		.type = map_type, .key_size = sizeof(k), .value_size = sizeof(v), \
		.max_entries = max, .flags = map_flags }

ACCEL_MAP(accel_sockhash, BPF_MAP_TYPE_SOCKHASH, struct accel_key, __u64, ACCEL_SOCKHASH_MAX_ENTRIES, 0);
ACCEL_MAP(accel_config, BPF_MAP_TYPE_SK_STORAGE, int, struct accel_sock_config, 0, BPF_F_NO_PREALLOC | BPF_F_CLONE);
ACCEL_MAP(accel_state, BPF_MAP_TYPE_SK_STORAGE, int, struct accel_sock_state, 0, BPF_F_NO_PREALLOC);
ACCEL_MAP(accel_owners, BPF_MAP_TYPE_LRU_PERCPU_HASH, __u64, struct accel_owner_stats, ACCEL_OWNERS_MAX_ENTRIES, 0);
ACCEL_MAP(accel_services, BPF_MAP_TYPE_HASH, __u64, struct accel_service, ACCEL_SERVICES_MAX_ENTRIES, 0);
ACCEL_MAP(accel_consumed, BPF_MAP_TYPE_LRU_HASH, struct accel_key, struct accel_flow, ACCEL_CONSUMED_MAX_ENTRIES, 0);
ACCEL_MAP(accel_track, BPF_MAP_TYPE_ARRAY, __u32, __u64, ACCEL_TRACK_BLOCK * ACCEL_TRACK_BLOCKS, BPF_F_MMAPABLE);
ACCEL_MAP(accel_scope, BPF_MAP_TYPE_HASH, __u32, struct accel_sock_config, ACCEL_SCOPE_MAX_ENTRIES, 0);
ACCEL_MAP(accel_local_prefixes, BPF_MAP_TYPE_LPM_TRIE, struct accel_prefix, __u32, ACCEL_PREFIXES_MAX_ENTRIES, BPF_F_NO_PREALLOC);

static __always_inline struct accel_owner_stats *owner_stats(__u64 owner)
{
	struct accel_owner_stats *s = bpf_map_lookup_elem(&accel_owners, &owner);
	if (s)
		return s;
	struct accel_owner_stats zero = {};
	bpf_map_update_elem(&accel_owners, &owner, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&accel_owners, &owner);
}

/* The verifier only accepts context loads at a constant offset from the context pointer. Clang likes to
 * merge the loads of two branches into one load through a selected pointer; the empty asm pins each
 * load where it is written. */
#define CTX(field) ({ __u32 __v = (field); asm volatile("" : "+r"(__v)); __v; })

#define TO_V6(out, family, ip4, ip6) do {					\
	__u32 __a = CTX(ip4), __b0 = CTX((ip6)[0]), __b1 = CTX((ip6)[1]);	\
	__u32 __b2 = CTX((ip6)[2]), __b3 = CTX((ip6)[3]);			\
	if ((family) == AF_INET) {						\
		(out)[0] = 0;							\
		(out)[1] = 0;							\
		(out)[2] = bpf_htonl(0x0000ffff);				\
		(out)[3] = __a;							\
	} else {								\
		/* Dual-mode (IPv4-mapped) sockets carry ::ffff:a.b.c.d here. */	\
		(out)[0] = __b0;						\
		(out)[1] = __b1;						\
		(out)[2] = __b2;						\
		(out)[3] = __b3;						\
	}									\
} while (0)

static __always_inline int is_loopback(const __u32 ip[4])
{
	if (ip[0] == 0 && ip[1] == 0 && ip[2] == bpf_htonl(0x0000ffff))
		return (bpf_ntohl(ip[3]) >> 24) == 127;
	return ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] == bpf_htonl(1);
}

static __always_inline int same_ip(const __u32 a[4], const __u32 b[4])
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/* Loopback traffic never leaves its namespace, and several namespaces can hold the same loopback
 * connection: key it by namespace. Other addresses are unique on a host and cross namespaces (veth). */
static __always_inline __u64 key_netns(const __u32 local[4], const __u32 remote[4], __u64 cookie)
{
	return (is_loopback(remote) || same_ip(local, remote)) ? cookie : 0;
}

_Static_assert(sizeof(struct accel_key) % sizeof(__u64) == 0, "same_key compares whole 64-bit words");

static __always_inline int same_key(const struct accel_key *a, const struct accel_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	__u64 diff = 0;
#pragma unroll
	for (int i = 0; i < (int)(sizeof(struct accel_key) / sizeof(__u64)); i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

/* Writes a tracked reader's slot in accel_track and bumps its block's change count, which is what the tracker watches;
 * false when the reader has no slot (yet). Only while the slot holds this reader's tag: a slot whose engine ended (or
 * whose tracker let it go) is freed while a connection may still name it, and given to another reader with another tag,
 * so an unconditional write, the close mark above all, could land on that reader's reports. Its engine writes the tag
 * before any entry names the slot. A compare-and-swap, against the reader's own stores; a write that keeps losing to
 * them is dropped: a publish is written again by the next send near the bound, and a mark that never lands only keeps
 * the slot from its next reader (a tracker forgets a closed connection's slot anyway). */
static __always_inline int write_slot(const struct accel_flow *flow, __u64 value)
{
	__u32 slot = flow->slot;
	if (slot == 0 || slot > ACCEL_TRACK_BLOCK * ACCEL_TRACK_BLOCKS)
		return 0;
	__u32 index = slot - 1;
	__u64 *entry = bpf_map_lookup_elem(&accel_track, &index);
	if (!entry)
		return 1;
	__u64 tag = (__u64)(flow->tag & 0xffff) << 48;
#pragma unroll
	for (int attempt = 0; attempt < 4; attempt++) {
		__u64 current = *(volatile __u64 *)entry;
		if ((current & ~ACCEL_TRACK_SENT_MASK) != tag)
			return 1; /* another reader's slot now, or not this one's yet */
		if (__sync_val_compare_and_swap(entry, current, tag | value) == current) {
			__u32 changed = index / ACCEL_TRACK_BLOCK * ACCEL_TRACK_BLOCK + ACCEL_TRACK_CHANGED;
			__u64 *count = bpf_map_lookup_elem(&accel_track, &changed);
			if (count)
				__sync_fetch_and_add(count, 1);
			return 1;
		}
	}
	return 1;
}

/* An accepted socket whose peer is not in the map stays (or goes back) out of it: recorded and counted. */
static __always_inline int skip_plain_peer(struct accel_sock_state *st, struct accel_owner_stats *stats)
{
	st->join = ACCEL_JOIN_SKIPPED_PLAIN_PEER;
	if (stats)
		__sync_fetch_and_add(&stats->skipped_plain_peer, 1);
	return 1;
}

SEC("sockops")
int accel_sockops(struct bpf_sock_ops *skops)
{
	__u32 op = skops->op;
	if (op == BPF_SOCK_OPS_STATE_CB) {
		/* Only sockets this program inserted asked for this callback: forget their consumption. */
		if (skops->args[1] == TCP_STATE_CLOSE && skops->sk) {
			struct accel_sock_state *st = bpf_sk_storage_get(&accel_state, skops->sk, 0, 0);
			if (st) {
				/* The connection closed: its reader's tracker frees the slot. */
				struct accel_flow *flow = bpf_map_lookup_elem(&accel_consumed, &st->key);
				if (flow)
					write_slot(flow, ACCEL_TRACK_CLOSED);
				bpf_map_delete_elem(&accel_consumed, &st->key);
			}
		}
		return 1;
	}
	if (op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	if (skops->family != AF_INET && skops->family != AF_INET6)
		return 1;
	struct bpf_sock *sk = skops->sk;
	if (!sk)
		return 1;
	struct accel_sock_config *cfg = bpf_sk_storage_get(&accel_config, sk, 0, 0);
	if (!cfg || !(cfg->flags & ACCEL_CFG_OPT_IN))
		return 1;
	__u64 owner = cfg->owner;
	struct accel_owner_stats *stats = owner_stats(owner);
	struct accel_sock_state *st = bpf_sk_storage_get(&accel_state, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		if (stats)
			__sync_fetch_and_add(&stats->insert_failed, 1);
		return 1;
	}
	st->owner = owner;

	__u32 local_ip[4], remote_ip[4];
	TO_V6(local_ip, skops->family, skops->local_ip4, skops->local_ip6);
	TO_V6(remote_ip, skops->family, skops->remote_ip4, skops->remote_ip6);
	__u32 local_port = CTX(skops->local_port), remote_port = bpf_ntohl(CTX(skops->remote_port));
	__u32 snd_nxt = CTX(skops->snd_nxt), rcv_nxt = CTX(skops->rcv_nxt);
	int server_end = op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB;
	struct accel_key key = {
		.server_end = server_end,
		.netns_cookie = key_netns(local_ip, remote_ip, bpf_get_netns_cookie(skops)),
	};
	/* The connecting end's address as both ends see it: its own local one, or the accepting end's remote one. The
	 * accepting end's address is left out, as the connecting end may know it only as a VIP that NAT rewrites. */
	if (server_end) {
		__builtin_memcpy(key.client_ip, remote_ip, 16);
		key.client_port = remote_port;
		key.client_seq = rcv_nxt;
		key.server_seq = snd_nxt;
	} else {
		__builtin_memcpy(key.client_ip, local_ip, 16);
		key.client_port = local_port;
		key.client_seq = snd_nxt;
		key.server_seq = rcv_nxt;
	}

	/* Attached to a cgroup and to one of its ancestors (a container's and a host service's), the program runs
	 * once per attachment for the same event. The first run decides; a second one would find the socket's own
	 * entry, fail, and undo the join. A socket connected again after a disconnect has a new key: decided anew. */
	if (st->join != ACCEL_JOIN_NONE && same_key(&st->key, &key))
		return 1;
	st->key = key;
	st->peer = key;
	st->peer.server_end = !server_end;
	st->consumed_seen = 0;

	/* A peer that cannot be on this host would only make this socket pay the sk_msg path. */
	if (!is_loopback(remote_ip) && !same_ip(local_ip, remote_ip)) {
		struct accel_prefix p = { .prefixlen = 128 };
		__builtin_memcpy(p.addr, remote_ip, 16);
		if (!bpf_map_lookup_elem(&accel_local_prefixes, &p)) {
			st->join = ACCEL_JOIN_SKIPPED_REMOTE;
			if (stats)
				__sync_fetch_and_add(&stats->skipped_remote, 1);
			return 1;
		}
	}

	/* TCP Fast Open can put data on the wire before establishment: such a socket stays on TCP. */
	if (skops->data_segs_out != 0) {
		st->join = ACCEL_JOIN_SKIPPED_EARLY;
		if (stats)
			__sync_fetch_and_add(&stats->insert_failed, 1);
		return 1;
	}

	/* A passive socket is established after its peer: the peer's ACK establishes it, and the peer sends that ACK only
	 * after its own sock_ops callback ran (tcp_finish_connect). So a peer that has no accel_consumed entry now was not
	 * inserted and never will be (its process does not use the fast path), or it was and its first send found no
	 * peer. In the map, this socket would only pay the sk_msg path on every send, for a verdict of TCP. */
	if (op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB && !bpf_map_lookup_elem(&accel_consumed, &st->peer))
		return skip_plain_peer(st, stats);

	struct accel_flow initial = {
		.consumed = (cfg->flags & ACCEL_CFG_REPORTS) ? ACCEL_CONSUMED_REPORTS : 0,
		.tracker = cfg->tracker,
	};
	bpf_map_update_elem(&accel_consumed, &key, &initial, BPF_ANY);
	long err = bpf_sock_hash_update(skops, &accel_sockhash, &key, BPF_NOEXIST);
	if (err != 0) {
		st->join = ACCEL_JOIN_FAILED;
		st->insert_error = (__s32)err;
		bpf_map_delete_elem(&accel_consumed, &key);
		if (stats)
			__sync_fetch_and_add(&stats->insert_failed, 1);
		return 1;
	}
	/* Checked again now that this socket is in the map: its client's first send may have found no peer (this socket
	 * was not inserted yet) and removed the client's entry after the check above. Such a client will leave the map,
	 * so this socket leaves it again, before it can send anything. */
	if (op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB && !bpf_map_lookup_elem(&accel_consumed, &st->peer)) {
		bpf_map_delete_elem(&accel_sockhash, &key);
		bpf_map_delete_elem(&accel_consumed, &key);
		return skip_plain_peer(st, stats);
	}
	st->join = ACCEL_JOIN_INSERTED;
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
	if (stats)
		__sync_fetch_and_add(&stats->inserted, 1);
	return 1;
}

static __always_inline void count(struct accel_sock_state *st, struct accel_owner_stats *stats, int redirected, __u64 size)
{
	if (redirected) {
		st->redirected_msgs++;
		st->redirected_bytes += size;
		if (stats) {
			stats->redirected_msgs++;
			stats->redirected_bytes += size;
		}
	} else {
		st->tcp_msgs++;
		st->tcp_bytes += size;
		if (stats) {
			stats->tcp_msgs++;
			stats->tcp_bytes += size;
		}
	}
}

/* Bumps one of the counts in the first block of the reader's tracker (ACCEL_TRACK_WAITING, ACCEL_TRACK_ABSENT). */
static __always_inline void bump_tracker_count(const struct accel_flow *flow, __u32 entry)
{
	__u32 block = flow->tracker - 1;
	if (block < ACCEL_TRACK_BLOCKS) {
		__u32 index = block * ACCEL_TRACK_BLOCK + entry;
		__u64 *count = bpf_map_lookup_elem(&accel_track, &index);
		if (count)
			__sync_fetch_and_add(count, 1);
	}
}

/* Tells the reader's tracker how much this writer has redirected (every byte of it already in the reader's queue:
 * this send's own bytes are not counted yet). Only near the bound, so a writer far from it pays nothing. */
static __always_inline void publish_sent(struct accel_flow *flow, __u64 sent)
{
	flow->sent = sent;
	if (!write_slot(flow, sent & ACCEL_TRACK_SENT_MASK & ~ACCEL_TRACK_CLOSED))
		bump_tracker_count(flow, ACCEL_TRACK_WAITING); /* no slot yet: the tracker looks for its new sockets */
}

/* What a reader that reports itself has consumed, from the slot in accel_track where it writes its running total
 * (tag << 48 | total, plain memory stores, no syscall), once it has one; 0 while it has none, after its connection
 * closed, or when the slot was given to another socket since (the tag differs): the flow's own total is the lower
 * bound then. */
static __always_inline __u64 reported(const struct accel_flow *flow)
{
	__u32 slot = flow->slot;
	if (flow->tracker || slot == 0 || slot > ACCEL_TRACK_BLOCK * ACCEL_TRACK_BLOCKS)
		return 0;
	__u32 index = slot - 1;
	__u64 *entry = bpf_map_lookup_elem(&accel_track, &index);
	if (!entry)
		return 0;
	__u64 value = *entry;
	if ((value >> 48) != (flow->tag & 0xffff) || (value & ACCEL_TRACK_CLOSED))
		return 0;
	return value & (ACCEL_TRACK_CLOSED - 1);
}

/* A socket in process scope (its reads tracked) whose first send found no peer and removed its accel_consumed entry:
 * tells its tracker, which takes it out of the map (user space must: a dropped psock discards its queue, which only user
 * space can see is empty). Through the socket's slot when it has one, else through the block's count of such sends,
 * which makes the tracker check every descriptor of its process. */
static __always_inline void tell_peer_absent(const struct accel_flow *own)
{
	if (!write_slot(own, ACCEL_TRACK_PEER_ABSENT))
		bump_tracker_count(own, ACCEL_TRACK_ABSENT);
}

SEC("sk_msg")
int accel_msg(struct sk_msg_md *msg)
{
	struct bpf_sock *sk = msg->sk;
	if (!sk)
		return SK_PASS;
	/* The socket's own lock is held here: the state needs no atomics. */
	struct accel_sock_state *st = bpf_sk_storage_get(&accel_state, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return SK_PASS;
	__u64 size = msg->size;

	if (st->verdict == ACCEL_VERDICT_UNDECIDED) {
		struct accel_sock_config *cfg = bpf_sk_storage_get(&accel_config, sk, 0, 0);
		__u32 kib = cfg && cfg->backlog_kib ? cfg->backlog_kib : ACCEL_DEFAULT_BACKLOG_KIB;
		st->backlog_limit = kib > (0xffffffffu >> 10) ? 0xffffffffu : kib << 10;
		if (cfg && (cfg->flags & ACCEL_CFG_WINDOW))
			st->flags |= ACCEL_STATE_WINDOW;
		if (st->join != ACCEL_JOIN_INSERTED) {
			/* In the map without accel_sockops' key: someone else put it there. */
			st->verdict = ACCEL_VERDICT_TCP;
			st->reason = ACCEL_REASON_NOT_INSERTED;
		} else {
			/* Decide REDIRECT now; the common path below redirects (or finds the peer absent). */
			st->verdict = ACCEL_VERDICT_REDIRECT;
			st->flags |= ACCEL_STATE_FIRST_SEND;
		}
	}

	struct accel_owner_stats *stats = owner_stats(st->owner);
	/* The kernel runs the program again only once the window the last verdict gave is used up (tcp_bpf_send_verdict
	 * keeps the verdict while psock->apply_bytes lasts), so every byte of it was given to that redirect: count it now,
	 * before the bound is checked. Its sends are not counted as messages: the program did not see them. */
	if (st->window) {
		st->redirected_bytes += st->window;
		if (stats)
			stats->redirected_bytes += st->window;
		st->window = 0;
	}
	if (st->verdict == ACCEL_VERDICT_REDIRECT) {
		int first = st->flags & ACCEL_STATE_FIRST_SEND;
		st->flags &= ~ACCEL_STATE_FIRST_SEND;
		/* Consumption only grows: while the last value read leaves room, the map need not be read again. */
		__u64 unread = st->redirected_bytes - st->consumed_seen;
		if (unread + size > st->backlog_limit / 4) {
			struct accel_flow *flow = bpf_map_lookup_elem(&accel_consumed, &st->peer);
			if (flow) {
				__u64 seen = flow->consumed & ACCEL_CONSUMED_MASK;
				__u64 own = reported(flow);
				if (own > seen)
					seen = own;
				if (seen > st->consumed_seen)
					st->consumed_seen = seen;
				if (flow->tracker)
					publish_sent(flow, st->redirected_bytes);
			}
			unread = st->redirected_bytes - st->consumed_seen;
		}
		if (unread + size > st->backlog_limit) {
			st->verdict = ACCEL_VERDICT_TCP;
			st->reason = ACCEL_REASON_BACKLOG;
		} else if (bpf_msg_redirect_hash(msg, &accel_sockhash, &st->peer, BPF_F_INGRESS) == SK_PASS) {
			count(st, stats, 1, size);
			if (st->flags & ACCEL_STATE_WINDOW) {
				/* The verdict covers this send and the next ones up to the window, within the room the bound leaves:
				 * the bound holds as if each send had been checked. Never less than this send, which is not split. */
				__u64 room = st->backlog_limit - (unread + size);
				__u64 extra = size < ACCEL_WINDOW_BYTES ? ACCEL_WINDOW_BYTES - size : 0;
				if (extra > room)
					extra = room;
				st->window = (__u32)extra;
				bpf_msg_apply_bytes(msg, (__u32)(size + extra));
			}
			return SK_PASS;
		} else {
			st->verdict = ACCEL_VERDICT_TCP;
			st->reason = first ? ACCEL_REASON_PEER_ABSENT : ACCEL_REASON_PEER_GONE;
			/* No peer at the first send: the peer is not in the map, or left it by closing. Without this socket's
			 * accel_consumed entry, a peer established from now on leaves the map again in its own sock_ops callback
			 * (accel_sockops), before it can send. User space may then take this socket out of the map once nothing
			 * redirected waits to be read and the peer is not in the map (TryLeaveFastPath; the tracker, for a socket in
			 * process scope), instead of paying this path on every send. */
			if (first) {
				/* The tracker is told only once the entry is gone: leaving is safe from then on. */
				struct accel_flow own = {};
				struct accel_flow *flow = bpf_map_lookup_elem(&accel_consumed, &st->key);
				if (flow)
					own = *flow;
				bpf_map_delete_elem(&accel_consumed, &st->key);
				if (own.tracker)
					tell_peer_absent(&own);
				else if (own.slot)
					write_slot(&own, ACCEL_TRACK_CLOSED); /* a reader's own slot: no entry names it now, free it */
			}
		}
		if (!first) {
			st->left_ns = bpf_ktime_get_ns();
			/* A peer leaves the map only when it closes (see the top): there is nothing left to redirect to, which is
			 * the connection's end (an HTTP/2 server's GOAWAY after its client closed, say), not a direction that lost the
			 * fast path. The socket's own state still says why. */
			if (stats && st->reason == ACCEL_REASON_BACKLOG)
				__sync_fetch_and_add(&stats->degraded, 1);
		}
	}
	/* Through TCP, one send at a time: a window asked for earlier in this message must not carry over to the pass. */
	if (st->flags & ACCEL_STATE_WINDOW)
		bpf_msg_apply_bytes(msg, 0);
	count(st, stats, 0, size);
	return SK_PASS;
}

/* Runs after the kernel dequeued redirected bytes for a reader (both tcp_bpf recvmsg paths call it).
 * Publishes the reader's running total under its own key, which its peer's accel_msg reads. */
SEC("fexit/__sk_msg_recvmsg")
int accel_consumed_fexit(__u64 *ctx)
{
	struct bpf_sock *sk = (struct bpf_sock *)ctx[0];
	int flags = (int)ctx[4];
	int copied = (int)ctx[6];
	if (copied <= 0 || (flags & MSG_PEEK))
		return 0;
	struct accel_sock_state *st = bpf_sk_storage_get(&accel_state, sk, 0, 0);
	if (!st)
		return 0;
	struct accel_flow *flow = bpf_map_lookup_elem(&accel_consumed, &st->key);
	if (flow)
		__sync_fetch_and_add(&flow->consumed, (__u64)copied);
	return 0;
}

/* Process scope: a TCP socket created by a process whose engine is in accel_scope gets that engine's config, as if
 * the engine had opted it in itself. Runs in the creating process; accepted sockets inherit their listener's. */
SEC("cgroup/sock_create")
int accel_sock_create(struct bpf_sock *sk)
{
	if (sk->type != SOCK_STREAM || sk->protocol != IPPROTO_TCP)
		return 1;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct accel_sock_config *scope = bpf_map_lookup_elem(&accel_scope, &tgid);
	if (!scope)
		return 1;
	struct accel_sock_config *cfg = bpf_sk_storage_get(&accel_config, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (cfg)
		*cfg = *scope;
	return 1;
}

/* The engine's probe: it binds a socket whose config asks (ACCEL_CFG_WHOAMI) and reads back its own tgid as
 * accel_sock_create will see it. Any other bind passes untouched. */
SEC("cgroup/post_bind4")
int accel_whoami(struct bpf_sock *sk)
{
	struct accel_sock_config *cfg = bpf_sk_storage_get(&accel_config, sk, 0, 0);
	if (cfg && (cfg->flags & ACCEL_CFG_WHOAMI))
		cfg->tgid = bpf_get_current_pid_tgid() >> 32;
	return 1;
}
