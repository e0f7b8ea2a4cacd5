//! Flow sharding: every conversation (as tshark numbers them) in exactly one
//! shard, every packet in exactly one shard, file order kept within each,
//! and the fragments of a datagram together.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::*;
use pcap_parallel::{Capture, FlowKey};

/// Per shard, the numbers of its packets, in the order the shard saw them.
fn shards(file: &str, k: usize, key: FlowKey) -> Vec<Vec<u64>> {
    Capture::open(capture_file(file).expect("the test checked"))
        .unwrap()
        .workers(2)
        .segment_len(Some(8192))
        .flows(k)
        .key(key)
        .fold(|_| Vec::new(), |v, p| v.push(p.number), |_, v| v)
        .unwrap()
}

/// tshark's fields per frame (frame number first).
fn tshark(file: &str, fields: &[&str], options: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"])
        .arg(capture_file(file).expect("the test checked"))
        .args(options);
    cmd.args(["-T", "fields", "-E", "occurrence=f", "-e", "frame.number"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark is installed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

fn check_partition(file: &str, sharded: &[Vec<u64>], packets: u64) {
    let mut all: Vec<u64> = sharded.concat();
    all.sort();
    assert_eq!(
        all,
        (1..=packets).collect::<Vec<_>>(),
        "{file}: every packet in exactly one shard"
    );
    for (i, s) in sharded.iter().enumerate() {
        assert!(
            s.windows(2).all(|w| w[0] < w[1]),
            "{file}: shard {i} in file order"
        );
    }
}

#[test]
fn conversations_and_datagrams_stay_whole() {
    let cases: &[(&str, FlowKey)] = &[
        ("appneta__tcpreplay__test.pcap", FlowKey::FiveTuple),
        (
            "seladb__PcapPlusPlus__http-packets.pcap",
            FlowKey::FiveTuple,
        ),
        ("seladb__PcapPlusPlus__sll.pcap", FlowKey::FiveTuple),
        ("seladb__PcapPlusPlus__VlanPackets.pcap", FlowKey::FiveTuple),
        (
            "seladb__PcapPlusPlus__four_ipv6_http_streams.pcap",
            FlowKey::FiveTuple,
        ),
        (
            "OISF__suricata-verify__tests--smb-length-5770--input.pcap",
            FlowKey::FiveTuple,
        ),
        ("seladb__PcapPlusPlus__raw_ip.pcap", FlowKey::FiveTuple),
        (
            "OISF__suricata-verify__tests--dhcp-request-flood--test.pcap",
            FlowKey::FiveTuple,
        ),
        (
            "seladb__PcapPlusPlus__Tests--Pcap++Test--PcapExamples--pcapng-example.pcapng",
            FlowKey::FiveTuple,
        ),
        // Fragmented traffic: the host pair keeps datagrams with their conversations.
        ("seladb__PcapPlusPlus__ip-frag.pcap", FlowKey::HostPair),
        (
            "seladb__PcapPlusPlus__ip6_fragments.pcap",
            FlowKey::HostPair,
        ),
        (
            "OISF__suricata-verify__defrag-af-confusion-spray-h8.pcap",
            FlowKey::HostPair,
        ),
    ];
    let manifest: HashMap<String, Entry> = manifest()
        .into_iter()
        .map(|e| (e.file.clone(), e))
        .collect();
    let mut total = 0;
    for &(file, key) in cases {
        // Without the corpus, the cases among the shipped captures.
        let Some(entry) = manifest.get(file) else {
            continue;
        };
        let packets = entry.packets();
        let streams = tshark(file, &["tcp.stream", "udp.stream"], &[]);
        let mut conversations = 0;
        for k in [2usize, 5, 64] {
            let sharded = shards(file, k, key);
            assert_eq!(sharded.len(), k);
            check_partition(file, &sharded, packets);
            let mut shard_of = HashMap::new();
            for (i, s) in sharded.iter().enumerate() {
                for &n in s {
                    shard_of.insert(n, i);
                }
            }
            // Every frame of a TCP or UDP stream in one shard.
            let mut home: HashMap<(bool, String), usize> = HashMap::new();
            for f in &streams {
                let n: u64 = f[0].parse().unwrap();
                for (is_tcp, id) in [(true, &f[1]), (false, &f[2])] {
                    if id.is_empty() {
                        continue;
                    }
                    let shard = shard_of[&n];
                    let first = *home.entry((is_tcp, id.clone())).or_insert(shard);
                    assert_eq!(
                        first, shard,
                        "{file}, {k} shards: stream {id} (tcp {is_tcp}) split"
                    );
                }
            }
            conversations = home.len();
        }
        total += conversations;
    }
    let least = if whole_corpus() { 100 } else { 40 };
    assert!(total > least, "{total} conversations checked");
}

#[test]
fn fragments_stay_with_their_datagram_by_five_tuple_too() {
    for file in [
        "seladb__PcapPlusPlus__ip-frag.pcap",
        "seladb__PcapPlusPlus__ip6_fragments.pcap",
    ] {
        if capture_file(file).is_none() {
            continue;
        }
        let frames = tshark(
            file,
            &[
                "ip.src",
                "ip.dst",
                "ip.id",
                "ipv6.src",
                "ipv6.dst",
                "ipv6.fraghdr.ident",
            ],
            &["-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"],
        );
        for k in [2usize, 5, 64] {
            let sharded = shards(file, k, FlowKey::FiveTuple);
            let mut shard_of = HashMap::new();
            for (i, s) in sharded.iter().enumerate() {
                for &n in s {
                    shard_of.insert(n, i);
                }
            }
            let mut datagrams: HashMap<String, usize> = HashMap::new();
            let mut checked = 0;
            for f in &frames {
                let n: u64 = f[0].parse().unwrap();
                let id = if !f[6].is_empty() {
                    format!("6 {} {} {}", f[4], f[5], f[6])
                } else {
                    format!("4 {} {} {}", f[1], f[2], f[3])
                };
                if f[3].is_empty() && f[6].is_empty() {
                    continue;
                }
                let shard = shard_of[&n];
                // Fragmented datagrams only: ids of unfragmented packets repeat freely.
                let frag = tshark_is_fragment(file, n);
                if !frag {
                    continue;
                }
                checked += 1;
                let first = *datagrams.entry(id.clone()).or_insert(shard);
                assert_eq!(first, shard, "{file}, {k} shards: fragments of {id} split");
            }
            assert!(checked > 10, "{file}: {checked} fragments checked");
        }
    }
}

/// Whether tshark sees frame `n` of `file` as an IP fragment (cached per file).
fn tshark_is_fragment(file: &str, n: u64) -> bool {
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, std::collections::HashSet<u64>>>> =
        OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
    let set = cache.entry(file.to_string()).or_insert_with(|| {
        tshark(
            file,
            &["ip.flags.mf", "ip.frag_offset", "ipv6.fraghdr.offset"],
            &["-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"],
        )
        .into_iter()
        .filter(|f| f[1] == "1" || (!f[2].is_empty() && f[2] != "0") || !f[3].is_empty())
        .map(|f| f[0].parse().unwrap())
        .collect()
    });
    set.contains(&n)
}

#[test]
fn shard_assignment_is_symmetric_and_stable() {
    use pcap_parallel::LinkType;
    use pcap_parallel::flow::shard_of;
    // One TCP segment and its reply (addresses and ports swapped), raw IPv4.
    let seg = |src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16| {
        let mut v = vec![0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0];
        v.extend_from_slice(&src);
        v.extend_from_slice(&dst);
        v.extend_from_slice(&sp.to_be_bytes());
        v.extend_from_slice(&dp.to_be_bytes());
        v.extend_from_slice(&[0; 16]);
        v
    };
    let a = seg([10, 0, 0, 1], [10, 0, 0, 2], 40000, 80);
    let b = seg([10, 0, 0, 2], [10, 0, 0, 1], 80, 40000);
    for k in [2, 7, 1000] {
        assert_eq!(
            shard_of(LinkType::RAW, &a, FlowKey::FiveTuple, k),
            shard_of(LinkType::RAW, &b, FlowKey::FiveTuple, k)
        );
    }
    // Fixed across runs and releases: a change here re-shuffles users' shards.
    assert_eq!(
        pcap_parallel::flow::flow_hash(LinkType::RAW, &a, FlowKey::FiveTuple),
        0xb3a3_4f83_d644_c656
    );
}
