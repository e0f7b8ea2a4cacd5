//! tcpdump filter expressions, with libpcap's exact semantics.
//!
//! An expression in pcap-filter(7) syntax (`tcp port 80 and not host
//! 10.0.0.1`) is compiled by libpcap itself, so its meaning is exactly
//! tcpdump's; the compiled classic-BPF program then runs in this crate's own
//! interpreter, in the workers, in parallel. libpcap is loaded when a filter
//! is first needed (`libpcap.so.0.8` or `libpcap.so.1`, Debian's `libpcap0.8`
//! package), so building this crate needs no C library; without it, asking
//! for a filter is a clear error, never a silently unfiltered run.
//!
//! Each link type gets its own program (pcapng interfaces may differ), as
//! libpcap compiles for one link type at a time.
//!
//! ```no_run
//! use pcap_parallel::{Capture, filter::Filter};
//! let syn = Filter::new("tcp[tcpflags] & tcp-syn != 0")?;
//! let n = Capture::open("trace.pcap")?.filter(syn).count()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::sync::{Arc, Mutex, OnceLock};

use crate::format::Endian;
use crate::packet::LinkType;

/// Why a filter cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// libpcap could not be loaded.
    #[error(
        "filters need libpcap, which could not be loaded ({0}); install it (Debian: apt-get install libpcap0.8)"
    )]
    Libpcap(String),
    /// libpcap rejected the expression.
    #[error("invalid filter expression '{expr}': {message}")]
    Syntax {
        /// The expression.
        expr: String,
        /// libpcap's message.
        message: String,
    },
    /// The expression does not apply to a link type of the capture.
    #[error("filter '{expr}' cannot be used on link type {link_type}: {message}")]
    LinkType {
        /// The expression.
        expr: String,
        /// The link type.
        link_type: LinkType,
        /// libpcap's message.
        message: String,
    },
}

/// One classic-BPF instruction, as libpcap lays it out.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

#[repr(C)]
struct BpfProgram {
    len: c_uint,
    insns: *mut Insn,
}

/// The libpcap functions a filter needs, loaded at run time.
struct Libpcap {
    fopen_offline: unsafe extern "C" fn(*mut libc::FILE, *mut c_char) -> *mut c_void,
    compile: unsafe extern "C" fn(*mut c_void, *mut BpfProgram, *const c_char, c_int, u32) -> c_int,
    freecode: unsafe extern "C" fn(*mut BpfProgram),
    geterr: unsafe extern "C" fn(*mut c_void) -> *mut c_char,
    close: unsafe extern "C" fn(*mut c_void),
    /// Keeps the library loaded; libpcap's compiler is not reentrant, so
    /// compilations are serialised by this lock.
    lock: Mutex<libloading::Library>,
}

fn libpcap() -> Result<&'static Libpcap, FilterError> {
    static LIB: OnceLock<Result<Libpcap, FilterError>> = OnceLock::new();
    LIB.get_or_init(|| {
        let mut last = String::new();
        for name in [
            "libpcap.so.0.8",
            "libpcap.so.1",
            "libpcap.so",
            "libpcap.dylib",
        ] {
            // SAFETY: loading libpcap runs its (trivial) initialisers only.
            match unsafe { libloading::Library::new(name) } {
                Ok(lib) => {
                    let get = || -> Result<Libpcap, libloading::Error> {
                        // SAFETY: the signatures are libpcap's documented
                        // ones, and the library stays loaded (`lock` holds it).
                        unsafe {
                            Ok(Libpcap {
                                fopen_offline: *lib.get(b"pcap_fopen_offline\0")?,
                                compile: *lib.get(b"pcap_compile\0")?,
                                freecode: *lib.get(b"pcap_freecode\0")?,
                                geterr: *lib.get(b"pcap_geterr\0")?,
                                close: *lib.get(b"pcap_close\0")?,
                                lock: Mutex::new(libloading::Library::new(name)?),
                            })
                        }
                    };
                    return get().map_err(|e| FilterError::Libpcap(e.to_string()));
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(FilterError::Libpcap(last))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Compiles `expr` for `link_type` with libpcap (optimised, as tcpdump
/// does), for a capture file of byte order `endian`.
///
/// The program is compiled against a savefile handle, not a "dead" one:
/// libpcap compiles some expressions differently for files than for live
/// captures (for BSD loopback, it accepts the IPv6 address-family values
/// of every BSD, and swaps them for files of the other byte order), and
/// tcpdump -r uses the file semantics. The savefile is the 24-byte header of
/// an empty capture, read from memory.
fn compile(expr: &str, link_type: LinkType, endian: Endian) -> Result<Vec<Insn>, String> {
    let lib = libpcap().map_err(|e| e.to_string())?;
    let cexpr = CString::new(expr).map_err(|_| "the expression contains a NUL byte".to_string())?;
    let mut header = Vec::with_capacity(24);
    let mut put = |v: u32, n: usize| {
        let b = match endian {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        };
        match (n, endian) {
            (4, _) => header.extend_from_slice(&b),
            (_, Endian::Little) => header.extend_from_slice(&b[..2]),
            (_, Endian::Big) => header.extend_from_slice(&b[2..]),
        }
    };
    put(0xa1b2_c3d4, 4);
    put(2, 2);
    put(4, 2);
    put(0, 4);
    put(0, 4);
    put(262_144, 4);
    put(link_type.0 as u32, 4);
    let _guard = lib.lock.lock().unwrap_or_else(|p| p.into_inner());
    // SAFETY: fmemopen reads our header, which outlives the handle (closed
    // below, with the FILE); the program struct is ours and freed; the
    // strings are NUL-terminated.
    unsafe {
        let file = libc::fmemopen(
            header.as_mut_ptr() as *mut c_void,
            header.len(),
            c"rb".as_ptr(),
        );
        if file.is_null() {
            return Err("could not open an in-memory savefile".into());
        }
        let mut errbuf = [0 as c_char; 512];
        let handle = (lib.fopen_offline)(file, errbuf.as_mut_ptr());
        if handle.is_null() {
            libc::fclose(file);
            return Err(CStr::from_ptr(errbuf.as_ptr())
                .to_string_lossy()
                .into_owned());
        }
        let mut prog = BpfProgram {
            len: 0,
            insns: std::ptr::null_mut(),
        };
        let rc = (lib.compile)(handle, &mut prog, cexpr.as_ptr(), 1, 0xffff_ffff);
        let result = if rc != 0 {
            let msg = (lib.geterr)(handle);
            Err(if msg.is_null() {
                "compilation failed".to_string()
            } else {
                CStr::from_ptr(msg).to_string_lossy().into_owned()
            })
        } else if prog.insns.is_null() {
            Err("libpcap returned no program".to_string())
        } else {
            let insns = std::slice::from_raw_parts(prog.insns, prog.len as usize).to_vec();
            (lib.freecode)(&mut prog);
            Ok(insns)
        };
        (lib.close)(handle);
        result
    }
}

/// A compiled program, shared.
type Program = Arc<[Insn]>;

/// Programs differ by link type and by the byte order of the file.
type ProgramKey = (LinkType, Endian);

/// A compiled filter expression, usable on any link type.
#[derive(Debug)]
pub struct Filter {
    expr: String,
    programs: Mutex<HashMap<ProgramKey, Result<Program, String>>>,
}

impl Filter {
    /// Compiles `expr`. The syntax is checked here (against Ethernet, then
    /// raw IP, then Linux SLL, so that link-layer-specific expressions
    /// pass); whether it suits each link type of a capture is checked when
    /// that link type is met.
    pub fn new(expr: &str) -> Result<Filter, FilterError> {
        libpcap()?;
        let filter = Filter {
            expr: expr.to_string(),
            programs: Mutex::new(HashMap::new()),
        };
        let mut first = None;
        for lt in [
            LinkType::ETHERNET,
            LinkType::RAW,
            LinkType::LINUX_SLL,
            LinkType::IEEE802_11,
        ] {
            match filter.program(lt, Endian::Little) {
                Ok(_) => return Ok(filter),
                Err(FilterError::LinkType { message, .. }) => {
                    first.get_or_insert(message);
                }
                Err(e) => return Err(e),
            }
        }
        Err(FilterError::Syntax {
            expr: expr.to_string(),
            message: first.unwrap_or_default(),
        })
    }

    /// The expression.
    pub fn expression(&self) -> &str {
        &self.expr
    }

    /// The program for `link_type` in a capture of byte order `endian`,
    /// compiled on first use.
    pub(crate) fn program(
        &self,
        link_type: LinkType,
        endian: Endian,
    ) -> Result<Arc<[Insn]>, FilterError> {
        let mut programs = self.programs.lock().unwrap_or_else(|p| p.into_inner());
        let entry = programs
            .entry((link_type, endian))
            .or_insert_with(|| compile(&self.expr, link_type, endian).map(Arc::from));
        entry.clone().map_err(|message| FilterError::LinkType {
            expr: self.expr.clone(),
            link_type,
            message,
        })
    }

    /// Does the packet pass? (`data` is what was captured; `original_len`
    /// what was on the wire, for `len`, `less` and `greater`.) A link type
    /// the expression does not suit passes nothing.
    pub fn matches(
        &self,
        link_type: LinkType,
        endian: Endian,
        data: &[u8],
        original_len: u32,
    ) -> bool {
        match self.program(link_type, endian) {
            Ok(p) => run(&p, data, original_len) != 0,
            Err(_) => false,
        }
    }
}

/// Keeps the last program used, so that a packet iterator locks nothing
/// while the link type stays the same.
#[derive(Default)]
pub(crate) struct ProgramCache {
    current: Option<(ProgramKey, Option<Program>)>,
}

impl ProgramCache {
    #[inline]
    pub fn matches(
        &mut self,
        filter: &Filter,
        link_type: LinkType,
        endian: Endian,
        data: &[u8],
        original_len: u32,
    ) -> bool {
        let prog = match &self.current {
            Some((key, p)) if *key == (link_type, endian) => p,
            _ => {
                self.current = Some(((link_type, endian), filter.program(link_type, endian).ok()));
                &self.current.as_ref().expect("just set").1
            }
        };
        prog.as_ref()
            .is_some_and(|p| run(p, data, original_len) != 0)
    }
}

// Opcode fields, as in <pcap/bpf.h>.
const CLASS: u16 = 0x07;
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;

/// Runs a classic-BPF program over a packet, as libpcap's `bpf_filter`
/// does: a load outside the captured bytes, a division by zero or an
/// invalid instruction rejects the packet (returns 0). Safe for any program.
pub(crate) fn run(prog: &[Insn], p: &[u8], wirelen: u32) -> u32 {
    let buflen = p.len();
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    let load = |k: usize, size: usize| -> Option<u32> {
        let b = p.get(k..k.checked_add(size)?)?;
        Some(match size {
            4 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            2 => u16::from_be_bytes([b[0], b[1]]) as u32,
            _ => b[0] as u32,
        })
    };
    loop {
        let Some(ins) = prog.get(pc) else { return 0 };
        pc += 1;
        let k = ins.k;
        let size = match ins.code & 0x18 {
            0x00 => 4,
            0x08 => 2,
            0x10 => 1,
            _ => 0,
        };
        match ins.code & CLASS {
            RET => {
                return match ins.code & 0x18 {
                    0x00 => k,
                    0x10 => a,
                    _ => 0,
                };
            }
            LD => match ins.code & 0xe0 {
                0x20 if size > 0 => match load(k as usize, size) {
                    Some(v) => a = v,
                    None => return 0,
                },
                0x40 if size > 0 => match load(x as usize + k as usize, size) {
                    Some(v) if (x as usize).checked_add(k as usize).is_some() => a = v,
                    _ => return 0,
                },
                0x80 => a = wirelen,
                0x00 => a = k,
                0x60 => match mem.get(k as usize) {
                    Some(v) => a = *v,
                    None => return 0,
                },
                _ => return 0,
            },
            LDX => match ins.code & 0xe0 {
                0x00 => x = k,
                0x80 => x = wirelen,
                0x60 => match mem.get(k as usize) {
                    Some(v) => x = *v,
                    None => return 0,
                },
                // BPF_MSH: the IPv4 header length.
                0xa0 => match p.get(k as usize) {
                    Some(b) if (k as usize) < buflen => x = ((b & 0x0f) as u32) << 2,
                    _ => return 0,
                },
                _ => return 0,
            },
            ST => match mem.get_mut(k as usize) {
                Some(m) => *m = a,
                None => return 0,
            },
            STX => match mem.get_mut(k as usize) {
                Some(m) => *m = x,
                None => return 0,
            },
            ALU => {
                let operand = if ins.code & 0x08 != 0 { x } else { k };
                a = match ins.code & 0xf0 {
                    0x00 => a.wrapping_add(operand),
                    0x10 => a.wrapping_sub(operand),
                    0x20 => a.wrapping_mul(operand),
                    0x30 if operand == 0 => return 0,
                    0x30 => a / operand,
                    0x40 => a | operand,
                    0x50 => a & operand,
                    0x60 => a.wrapping_shl(operand),
                    0x70 => a.wrapping_shr(operand),
                    0x80 => a.wrapping_neg(),
                    0x90 if operand == 0 => return 0,
                    0x90 => a % operand,
                    0xa0 => a ^ operand,
                    _ => return 0,
                };
            }
            JMP => {
                let operand = if ins.code & 0x08 != 0 { x } else { k };
                let taken = match ins.code & 0xf0 {
                    0x00 => {
                        pc = pc.saturating_add(k as usize);
                        continue;
                    }
                    0x10 => a == operand,
                    0x20 => a > operand,
                    0x30 => a >= operand,
                    0x40 => a & operand != 0,
                    _ => return 0,
                };
                pc += if taken { ins.jt } else { ins.jf } as usize;
            }
            MISC => match ins.code & 0xf8 {
                0x00 => x = a,
                0x80 => a = x,
                _ => return 0,
            },
            _ => return 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn i(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    #[test]
    fn interpreter_basics() {
        // ldh [12]; jeq #0x800, accept, reject
        let prog = [
            i(0x28, 0, 0, 12),
            i(0x15, 0, 1, 0x800),
            i(0x06, 0, 0, 262144),
            i(0x06, 0, 0, 0),
        ];
        let mut frame = vec![0u8; 14];
        frame[12] = 0x08;
        assert_eq!(run(&prog, &frame, 60), 262144);
        frame[12] = 0x86;
        assert_eq!(run(&prog, &frame, 60), 0);
        // A load past the captured bytes rejects.
        assert_eq!(run(&prog, &frame[..10], 60), 0);
        // Division by zero rejects; a jump out of the program rejects.
        assert_eq!(run(&[i(0x34, 0, 0, 0), i(0x06, 0, 0, 1)], &[], 0), 0);
        assert_eq!(run(&[i(0x05, 0, 0, 100)], &[], 0), 0);
        // len: the original length.
        assert_eq!(run(&[i(0x80, 0, 0, 0), i(0x16, 0, 0, 0)], &[], 1234), 1234);
    }
}
