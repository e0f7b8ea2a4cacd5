"""The example of the original pcap-parallel 0.1 README (count the source
IP addresses of every packet with dpkt), run as the baseline the benchmark
suite compares `pcap-parallel top --by src` with. Usage: python3 THIS FILE.pcap
"""
import ipaddress
import sys
from collections import Counter

import dpkt
from pcap_parallel import PCAPParallel


def process_partial_pcap(file_handle):
    srcs = Counter()
    pcap = dpkt.pcap.Reader(file_handle)
    for timestamp, packet in pcap:
        eth = dpkt.ethernet.Ethernet(packet)
        if isinstance(eth.data, dpkt.ip.IP):
            try:
                srcs[str(ipaddress.ip_address(eth.data.src))] += 1
            except Exception:
                pass
    return srcs


if __name__ == "__main__":
    ps = PCAPParallel(sys.argv[1], callback=process_partial_pcap)
    partial_results = ps.split()
    total_counts = partial_results.pop(0).result()
    for partial in partial_results:
        next_counts = partial.result()
        for key in next_counts:
            total_counts[key] += next_counts[key]
    for key in total_counts:
        print(f"{key:<30} {str(total_counts[key]):>8}")
