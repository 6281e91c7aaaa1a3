//! Allocations that cannot be satisfied are errors (`Error::OutOfMemory` naming the op and
//! the bytes), never an abort of the process; shape products that overflow are errors too.

use deepseek::{DType, Error, Tensor};

/// 10^12 elements: 4 TB of f32, more than any test machine can reserve.
const HUGE: usize = 1_000_000_000_000;

/// Under `vm.overcommit_memory = 1` the kernel grants any request and kills the process
/// when the pages are touched; no allocator can report that, so the tests that ask for
/// 4 TB skip there (the overflow checks still run).
fn overcommit_always() -> bool {
    std::fs::read_to_string("/proc/sys/vm/overcommit_memory").is_ok_and(|s| s.trim() == "1")
}

fn oom(r: deepseek::Result<Tensor>, op: &str, bytes: u128) {
    match r {
        Err(Error::OutOfMemory { op: o, bytes: b }) => {
            assert_eq!(o, op);
            assert_eq!(b, bytes);
            let msg = Error::OutOfMemory { op: o, bytes: b }.to_string();
            assert!(msg.contains(&bytes.to_string()), "{msg}");
            assert!(msg.contains("not enough memory"), "{msg}");
        }
        other => panic!("expected OutOfMemory from {op}, got {other:?}"),
    }
}

#[test]
fn creation_of_huge_tensors_is_an_error() {
    if overcommit_always() {
        eprintln!("skipped: vm.overcommit_memory = 1");
        return;
    }
    oom(
        Tensor::zeros(&[HUGE], DType::F32),
        "zeros",
        4 * HUGE as u128,
    );
    oom(Tensor::ones(&[HUGE], DType::F64), "full", 8 * HUGE as u128);
    oom(
        Tensor::randn(&[HUGE / 10], DType::F32),
        "randn",
        4 * HUGE as u128 / 10,
    );
    oom(Tensor::rand(&[HUGE], DType::F32), "rand", 4 * HUGE as u128);
    oom(
        Tensor::randint(0, 5, &[HUGE], DType::I64),
        "randint",
        8 * HUGE as u128,
    );
    oom(
        Tensor::arange(0.0, HUGE as f64, 1.0, DType::F32),
        "arange",
        4 * HUGE as u128,
    );
    oom(Tensor::eye(1 << 20, 1 << 20, DType::F64), "eye", 8 << 40);
    oom(Tensor::randperm(HUGE), "randperm", 8 * HUGE as u128);
}

#[test]
fn sizes_whose_bytes_overflow_are_an_error() {
    // 2^62 f32 elements are 2^64 bytes: not representable in usize, reported exactly.
    oom(Tensor::zeros(&[1 << 62], DType::F32), "zeros", 1 << 64);
    // The element count itself overflows.
    let e = Tensor::zeros(&[1 << 40, 1 << 40], DType::F32).unwrap_err();
    assert!(e.to_string().contains("overflow"), "{e}");
    let x = Tensor::zeros(&[1, 1], DType::F32).unwrap();
    assert!(x.expand(&[1 << 40, 1 << 40]).is_err());
    // 2^66 wraps to 0 in unchecked arithmetic, which would have "matched" an empty tensor.
    assert!(Tensor::zeros(&[0], DType::F32)
        .unwrap()
        .reshape(&[1 << 32, 1 << 32, 1 << 2])
        .is_err());
    // A zero dim makes any shape empty, however large the others.
    let e = Tensor::zeros(&[1 << 40, 1 << 40, 0], DType::F32).unwrap();
    assert_eq!(e.numel(), 0);
}

#[test]
fn kernels_report_out_of_memory_with_their_op() {
    if overcommit_always() {
        eprintln!("skipped: vm.overcommit_memory = 1");
        return;
    }
    // A view of 10^12 elements costs nothing; materialising it needs 4 TB.
    let x = Tensor::zeros(&[1, 1], DType::F32).unwrap();
    let big = x.expand(&[1_000_000, 1_000_000]).unwrap();
    let e = big.contiguous().unwrap_err();
    assert!(
        matches!(e, Error::OutOfMemory { bytes, .. } if bytes == 4 * HUGE as u128),
        "{e}"
    );
    // Elementwise on the view.
    let e = big.exp().unwrap_err();
    assert!(matches!(e, Error::OutOfMemory { .. }), "{e}");
    // A matmul whose output is 10^12 elements.
    let a = Tensor::zeros(&[1_000_000, 1], DType::F32).unwrap();
    let b = Tensor::zeros(&[1, 1_000_000], DType::F32).unwrap();
    match a.matmul(&b) {
        Err(Error::OutOfMemory { op, bytes }) => {
            assert_eq!(op, "matmul");
            assert_eq!(bytes, 4 * HUGE as u128);
        }
        other => panic!("{other:?}"),
    }
    // The process is still healthy: a normal op afterwards works.
    let y = a.add(&a).unwrap();
    assert_eq!(y.shape(), &[1_000_000, 1]);
}
