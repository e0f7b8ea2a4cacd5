use pcap_parallel::{Capture, Split};
fn main() {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).unwrap();
        for seg in [None, Some(333usize)] {
            let t = std::time::Instant::now();
            let mut redone = 0;
            let mut segs = 0;
            let c = Capture::from_bytes(&path, bytes.clone()).unwrap().split(Split::Chunks(7)).segment_len(seg).workers(2);
            let r = c.run(|c| Ok(c.packet_count()), |_| {});
            redone += r.redone_segments; segs += r.segments;
            println!("{:>8.3}s seg={seg:?} segs={segs} redone={redone} err={:?} {}", t.elapsed().as_secs_f64(), r.input_error.map(|e| e.to_string()), path.rsplit('/').next().unwrap());
        }
    }
}
