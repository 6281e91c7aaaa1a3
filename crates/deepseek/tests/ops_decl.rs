//! The op declarations: the table-derived pieces agree with each other, and the dtype rules
//! live in the core (Rust and Python give the same result dtype).

use deepseek::ops::{UnaryOp, UNARY_OPS};
use deepseek::{DType, Tensor};
use std::collections::HashSet;

#[test]
fn every_declared_unary_op_is_built_by_its_key() {
    let mut keys = HashSet::new();
    for d in UNARY_OPS {
        assert!(keys.insert(d.key), "duplicate key {}", d.key);
        let attr = |name: &str| -> Result<Option<f64>, String> {
            Ok(d.attrs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, def)| def.unwrap_or(2.0)))
        };
        let op = UnaryOp::from_key(d.key, &attr)
            .expect("declared key")
            .expect("attributes given");
        assert_eq!(op.key(), d.key);
        assert_eq!(op.name(), d.name);
        assert_eq!(op.int_ok(), d.int_ok);
        // Each op runs through the generic entry point on f32 and f64.
        for dt in [DType::F32, DType::F64] {
            let x = Tensor::from_vec(vec![0.25f64, 0.5, 1.5], &[3])
                .unwrap()
                .to_dtype(dt)
                .unwrap();
            let y = x.unary(op).unwrap();
            assert_eq!(y.shape(), &[3]);
            assert_eq!(y.dtype(), dt);
        }
    }
    assert!(UnaryOp::from_key("no_such_op", &|_| Ok(None)).is_none());
}

#[test]
fn a_required_attribute_missing_is_an_error_naming_it() {
    let e = UnaryOp::from_key("pow_scalar", &|_| Ok(None))
        .unwrap()
        .unwrap_err();
    assert!(e.contains("exponent"), "{e}");
    // Defaults apply when an attribute is absent.
    let op = UnaryOp::from_key("softplus", &|_| Ok(None))
        .unwrap()
        .unwrap();
    assert_eq!(
        op,
        UnaryOp::Softplus {
            beta: 1.0,
            threshold: 20.0
        }
    );
}

#[test]
fn generated_methods_equal_the_generic_entry_point() {
    let x = Tensor::from_vec(vec![-1.5f32, -0.2, 0.0, 0.3, 2.0], &[5]).unwrap();
    let a = x.softplus(2.0, 1.0).unwrap().to_vec::<f32>().unwrap();
    let b = x
        .unary(UnaryOp::Softplus {
            beta: 2.0,
            threshold: 1.0,
        })
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert_eq!(a, b);
    let a = x.exp().unwrap().to_vec::<f32>().unwrap();
    let b = x.unary(UnaryOp::Exp).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(a, b);
}

#[test]
fn zero_dim_promotion_is_the_cores_rule() {
    let v = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
    let s64 = Tensor::from_vec(vec![0.5f64], &[]).unwrap();
    // Same category: the dimensioned operand's dtype wins (PyTorch: f32).
    assert_eq!(v.add(&s64).unwrap().dtype(), DType::F32);
    assert_eq!(s64.mul(&v).unwrap().dtype(), DType::F32);
    assert_eq!(v.result_type(&s64), DType::F32);
    // A higher category in the 0-d operand wins with its own dtype (PyTorch: f64).
    let i = Tensor::from_vec(vec![1i64, 2], &[2]).unwrap();
    assert_eq!(i.add(&s64).unwrap().dtype(), DType::F64);
    // Two dimensioned tensors promote as usual.
    let w = Tensor::from_vec(vec![0.5f64, 1.0], &[2]).unwrap();
    assert_eq!(v.add(&w).unwrap().dtype(), DType::F64);
    // where() follows the same rule.
    let c = v.gt_scalar(1.5).unwrap();
    assert_eq!(
        Tensor::where_cond(&c, &v, &s64).unwrap().dtype(),
        DType::F32
    );
}

#[test]
fn every_declared_binary_op_is_built_by_its_name() {
    use deepseek::ops::{BinaryOp, BINARY_OPS};
    let a = Tensor::from_vec(vec![1.0f32, -2.0, 3.5], &[3]).unwrap();
    let b = Tensor::from_vec(vec![2.0f32, -2.0, 0.5], &[3]).unwrap();
    for d in BINARY_OPS {
        let op = BinaryOp::from_key(d.name).expect("declared name");
        assert_eq!(op.name(), d.name);
        assert_eq!(op.is_predicate(), d.predicate);
        let (x, y) = if matches!(op, BinaryOp::And | BinaryOp::Or | BinaryOp::Xor) {
            (a.gt_scalar(0.0).unwrap(), b.gt_scalar(0.0).unwrap())
        } else {
            (a.clone(), b.clone())
        };
        let r = x.binary(&y, op).unwrap();
        assert_eq!(r.dtype() == DType::Bool, d.predicate, "{}", d.name);
    }
    assert!(BinaryOp::from_key("no_such_op").is_none());
}
