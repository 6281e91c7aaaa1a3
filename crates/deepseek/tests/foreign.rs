//! Tensors over memory lent by another library (`Tensor::from_foreign`) and `data_ptr`.

use deepseek::tensor::Layout;
use deepseek::Tensor;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Lends its vector's heap memory and records when it is released.
struct Lender {
    released: Arc<AtomicBool>,
    _mem: Vec<f32>,
}

impl Drop for Lender {
    fn drop(&mut self) {
        self.released.store(true, Ordering::SeqCst);
    }
}

fn lend(mut mem: Vec<f32>, layout: Layout) -> (Tensor, Arc<AtomicBool>, *mut f32) {
    let released = Arc::new(AtomicBool::new(false));
    let ptr = mem.as_mut_ptr();
    let len = mem.len();
    let owner = Lender {
        released: released.clone(),
        _mem: mem,
    };
    // SAFETY: the vector's heap memory stays in place inside `owner` until it is dropped.
    let t =
        unsafe { Tensor::from_foreign(NonNull::new(ptr).unwrap(), len, layout, Box::new(owner)) }
            .unwrap();
    (t, released, ptr)
}

#[test]
fn foreign_memory_is_shared_both_ways_and_released_last() {
    // A 2x3 view with column-major strides over 6 floats.
    let layout = Layout {
        shape: vec![2, 3],
        strides: vec![1, 2],
        offset: 0,
    };
    let (t, released, ptr) = lend(vec![0., 1., 2., 3., 4., 5.], layout);
    assert_eq!(t.to_vec::<f32>().unwrap(), vec![0., 2., 4., 1., 3., 5.]);
    assert_eq!(t.data_ptr(), ptr as *const u8);
    // deepseek writes are seen by the lender ...
    {
        let _g = deepseek::no_grad();
        t.copy_(&Tensor::full(&[2, 3], 7.0, deepseek::DType::F32).unwrap())
            .unwrap();
    }
    // SAFETY: the memory is alive (the tensor holds its owner).
    assert_eq!(unsafe { *ptr.add(5) }, 7.0);
    // ... and the lender's writes by deepseek.
    unsafe { *ptr.add(1) = -1.0 };
    assert_eq!(t.to_vec::<f32>().unwrap()[3], -1.0);
    let view = t.transpose(0, 1).unwrap();
    let sum = t.sum_all().unwrap();
    drop(t);
    assert!(
        !released.load(Ordering::SeqCst),
        "a view still uses the memory"
    );
    assert_eq!(view.shape(), &[3, 2]);
    assert_eq!(sum.to_vec::<f32>().unwrap(), vec![34.0]);
    drop(view);
    assert!(released.load(Ordering::SeqCst));
}

#[test]
fn a_layout_past_the_lent_memory_is_refused() {
    let released = Arc::new(AtomicBool::new(false));
    let mut mem = vec![0f32; 4];
    let ptr = NonNull::new(mem.as_mut_ptr()).unwrap();
    let owner = Lender {
        released: released.clone(),
        _mem: mem,
    };
    let layout = Layout {
        shape: vec![2, 3],
        strides: vec![3, 1],
        offset: 0,
    };
    // SAFETY: as above; the call must refuse the layout without touching the memory.
    let err = unsafe { Tensor::from_foreign(ptr, 4, layout, Box::new(owner)) }.unwrap_err();
    assert!(err.to_string().contains("past the 4 elements"), "{err}");
    assert!(
        released.load(Ordering::SeqCst),
        "the owner is dropped on error"
    );
}
