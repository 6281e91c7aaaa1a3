//! Inputs the fuzz targets (`fuzz/`, `scripts/fuzz.sh`) found, kept as regression tests. This
//! binary counts allocations: a loader must never ask for memory that the file's own bytes do
//! not back (libFuzzer's `-malloc_limit_mb` is the same check).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Largest;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only recording the largest request.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LARGEST.fetch_max(n, Ordering::Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static A: Largest = Largest;

fn data(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(name)
}

/// A 29 KB tiny-Llama GGUF whose `llama.block_count` the fuzzer set to about 4·10^9: the
/// loader reserved room for that many decoder layers (5 GB) before reading the first one.
#[test]
fn gguf_block_count_is_not_trusted_for_allocation() {
    use deepseek::models::gguf::GgufFile;
    use deepseek::models::llama::LlamaForCausalLM;
    let path = data("gguf_huge_block_count.gguf");
    let bytes = std::fs::read(&path).unwrap();
    let f = GgufFile::parse(bytes, &path.display().to_string()).unwrap();
    LARGEST.store(0, Ordering::Relaxed);
    let r = LlamaForCausalLM::from_gguf(&f);
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(r.is_err(), "a model with missing layers loaded");
    assert!(
        largest < 64 << 20,
        "from_gguf asked for {largest} bytes at once for a 29 KB file"
    );
}
