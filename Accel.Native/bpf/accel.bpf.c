// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * The fast path. Two programs share one SOCKHASH:
 *
 *  accel_sockops  (cgroup sock_ops)  puts a socket that user space opted in into the map under its
 *                 own 4-tuple the moment the kernel establishes it, before user space can write.
 *  accel_msg      (sk_msg verdict)   on each sendmsg of a socket in the map, redirects the bytes into
 *                 the peer's receive queue, or lets them go through TCP.
 *
 * Ordering (KERNEL-FACTS 1): redirected bytes are read before bytes waiting in the TCP receive queue,
 * so a direction that has put any byte on TCP must never redirect afterwards. The decision is made
 * once per socket at its first send and is sticky: REDIRECT only if the peer is in the map and this
 * socket is known to have sent nothing through TCP; TCP otherwise, for life. REDIRECT -> TCP later
 * (peer gone) is order-safe: the queued redirected bytes are older and are read first.
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

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define ACCEL_MAP(name, map_type, k, v, max, map_flags) \
	struct accel_map_def name SEC("accel_maps") = { \
		.type = map_type, .key_size = sizeof(k), .value_size = sizeof(v), \
		.max_entries = max, .flags = map_flags }

ACCEL_MAP(accel_sockhash, BPF_MAP_TYPE_SOCKHASH, struct accel_key, __u64, ACCEL_SOCKHASH_MAX_ENTRIES, 0);
ACCEL_MAP(accel_config, BPF_MAP_TYPE_SK_STORAGE, int, struct accel_sock_config, 0, BPF_F_NO_PREALLOC | BPF_F_CLONE);
ACCEL_MAP(accel_state, BPF_MAP_TYPE_SK_STORAGE, int, struct accel_sock_state, 0, BPF_F_NO_PREALLOC);
ACCEL_MAP(accel_owners, BPF_MAP_TYPE_LRU_PERCPU_HASH, __u64, struct accel_owner_stats, ACCEL_OWNERS_MAX_ENTRIES, 0);
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
 * 4-tuple: key it by namespace. Other addresses are unique on a host and cross namespaces (veth). */
static __always_inline __u64 key_netns(const __u32 local[4], const __u32 remote[4], __u64 cookie)
{
	return (is_loopback(remote) || same_ip(local, remote)) ? cookie : 0;
}

SEC("sockops")
int accel_sockops(struct bpf_sock_ops *skops)
{
	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
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

	struct accel_key key = {};
	TO_V6(key.local_ip, skops->family, skops->local_ip4, skops->local_ip6);
	TO_V6(key.remote_ip, skops->family, skops->remote_ip4, skops->remote_ip6);
	key.local_port = skops->local_port;
	key.remote_port = bpf_ntohl(skops->remote_port);
	key.netns_cookie = key_netns(key.local_ip, key.remote_ip, bpf_get_netns_cookie(skops));

	/* A peer that cannot be on this host would only make this socket pay the sk_msg path. */
	if (!is_loopback(key.remote_ip) && !same_ip(key.local_ip, key.remote_ip)) {
		struct accel_prefix p = { .prefixlen = 128 };
		__builtin_memcpy(p.addr, key.remote_ip, 16);
		if (!bpf_map_lookup_elem(&accel_local_prefixes, &p)) {
			if (stats)
				__sync_fetch_and_add(&stats->skipped_remote, 1);
			return 1;
		}
	}

	/* TCP Fast Open can put data on the wire before establishment: such a socket is not clean. */
	if (skops->data_segs_out != 0) {
		if (stats)
			__sync_fetch_and_add(&stats->insert_failed, 1);
		return 1;
	}

	struct accel_sock_state *st = bpf_sk_storage_get(&accel_state, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		if (stats)
			__sync_fetch_and_add(&stats->insert_failed, 1);
		return 1;
	}
	st->owner = owner;
	st->flags |= ACCEL_STATE_KERNEL_INSERTED;

	if (bpf_sock_hash_update(skops, &accel_sockhash, &key, BPF_NOEXIST) != 0) {
		st->flags &= ~ACCEL_STATE_KERNEL_INSERTED;
		if (stats)
			__sync_fetch_and_add(&stats->insert_failed, 1);
		return 1;
	}
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

	struct accel_key peer = {};
	TO_V6(peer.local_ip, msg->family, msg->remote_ip4, msg->remote_ip6);
	TO_V6(peer.remote_ip, msg->family, msg->local_ip4, msg->local_ip6);
	peer.local_port = bpf_ntohl(msg->remote_port);
	peer.remote_port = msg->local_port;
	peer.netns_cookie = key_netns(peer.remote_ip, peer.local_ip, bpf_get_netns_cookie(msg));

	if (st->verdict == ACCEL_VERDICT_UNDECIDED) {
		int clean = st->flags & ACCEL_STATE_KERNEL_INSERTED;
		if (!clean) {
			/* Inserted by user space: clean only if user space proved it after insertion. */
			struct accel_sock_config *cfg = bpf_sk_storage_get(&accel_config, sk, 0, 0);
			if (cfg) {
				st->owner = cfg->owner;
				clean = cfg->flags & ACCEL_CFG_CLEAN;
			}
		}
		if (!clean) {
			st->verdict = ACCEL_VERDICT_TCP;
			st->reason = ACCEL_REASON_NOT_CLEAN;
		} else if (bpf_msg_redirect_hash(msg, &accel_sockhash, &peer, BPF_F_INGRESS) == SK_PASS) {
			st->verdict = ACCEL_VERDICT_REDIRECT;
		} else {
			st->verdict = ACCEL_VERDICT_TCP;
			st->reason = ACCEL_REASON_PEER_ABSENT;
		}
		count(st, owner_stats(st->owner), st->verdict == ACCEL_VERDICT_REDIRECT, size);
		return SK_PASS;
	}

	struct accel_owner_stats *stats = owner_stats(st->owner);
	if (st->verdict == ACCEL_VERDICT_REDIRECT) {
		if (bpf_msg_redirect_hash(msg, &accel_sockhash, &peer, BPF_F_INGRESS) == SK_PASS) {
			count(st, stats, 1, size);
			return SK_PASS;
		}
		st->verdict = ACCEL_VERDICT_TCP;
		st->reason = ACCEL_REASON_PEER_GONE;
		if (stats)
			__sync_fetch_and_add(&stats->degraded, 1);
	}
	count(st, stats, 0, size);
	return SK_PASS;
}
