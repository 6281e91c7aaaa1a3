//! Strided copies into views: cat, pad, in-place assignment.

use super::strided::Rows;
use crate::tensor::{CpuStorage, Element, Layout};
use crate::{Error, Result};

/// Copies `src` (layout `ls`) into the view `ld` of `dst`; shapes must be equal.
pub fn copy_into<T: Element>(dst: &mut [T], ld: &Layout, src: &[T], ls: &Layout) {
    let rows = Rows::<2>::new(
        &ld.shape,
        [&ld.strides, &ls.strides],
        [ld.offset, ls.offset],
    );
    let inner = rows.inner;
    let [id, is] = rows.istr;
    if ld.numel() == 0 {
        return;
    }
    rows.for_range(0..rows.rows(), |_, [od, os]| {
        if id == 1 && is == 1 {
            dst[od..od + inner].copy_from_slice(&src[os..os + inner]);
        } else {
            for j in 0..inner {
                dst[od + j * id] = src[os + j * is];
            }
        }
    });
}

/// Same as [`copy_into`] over untyped storages of one dtype.
pub fn copy_storage(
    dst: &mut CpuStorage,
    ld: &Layout,
    src: &CpuStorage,
    ls: &Layout,
) -> Result<()> {
    crate::with_storage!(dst, |d: T| {
        let s = T::slice(src).ok_or_else(|| {
            Error::dtype(
                "copy_",
                format!("cannot copy {} into {}", src.dtype(), T::DTYPE),
            )
        })?;
        copy_into(d, ld, s, ls);
        Ok(())
    })
}
