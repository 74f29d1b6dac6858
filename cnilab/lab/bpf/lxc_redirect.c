// SPDX-License-Identifier: GPL-2.0
/*
 * cnilab netns lab: same-host pod-to-pod forwarding in eBPF, the way Cilium's
 * per-endpoint program does it in its basic form.
 *
 * Attached with tc (clsact, direct-action) on the ingress of every pod's
 * host-side veth (lxc*), i.e. to packets leaving a pod. If the IPv4
 * destination is a pod on this host, the Ethernet addresses are rewritten as a
 * router would and the packet is handed straight to the destination pod's
 * interface with bpf_redirect_peer(): it never enters the host's IP stack, so
 * no bridge, no routing lookup and no netfilter hook sees it. Anything else
 * (ARP, other hosts, Services) continues into the host stack (TC_ACT_OK).
 *
 * The endpoint table is generated per host at lab build time into
 * endpoints.h, as Cilium compiles per-endpoint configuration headers.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct endpoint {
	__u32 ip;             /* network byte order */
	__u32 host_ifindex;   /* ifindex of the pod's host-side veth (lxc*) */
	__u8 pod_mac[ETH_ALEN];
	__u8 host_mac[ETH_ALEN];
};

#include "endpoints.h"  /* defines ENDPOINT_COUNT and ENDPOINTS[] */

SEC("tc")
int lxc_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;

#pragma unroll
	for (int i = 0; i < ENDPOINT_COUNT; i++) {
		const struct endpoint *ep = &ENDPOINTS[i];

		if (ip->daddr != ep->ip)
			continue;
		__builtin_memcpy(eth->h_dest, ep->pod_mac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, ep->host_mac, ETH_ALEN);
		return bpf_redirect_peer(ep->host_ifindex, 0);
	}
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
