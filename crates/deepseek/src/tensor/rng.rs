//! The one seedable random generator behind every random op (`manual_seed`).

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

/// xoshiro256++: fast, good statistical quality, 256 bits of state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generator {
    s: [u64; 4],
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Generator {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        Generator {
            s: [
                splitmix(&mut x),
                splitmix(&mut x),
                splitmix(&mut x),
                splitmix(&mut x),
            ],
        }
    }
    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let r = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        r
    }
    /// Uniform in [0, 1) with 53 random bits.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Uniform in [0, 1) with `bits` random bits (1..=53): a multiple of 2^-bits, so a
    /// float with at least `bits` mantissa bits holds it exactly and it never rounds to 1.
    #[inline]
    pub fn uniform_bits(&mut self, bits: u32) -> f64 {
        (self.next_u64() >> (64 - bits)) as f64 * (-(bits as f64)).exp2()
    }
    /// Two uniforms in [0, 1) of 24 random bits each (exact in f32, never 1.0) from one
    /// 64-bit draw.
    #[inline]
    pub fn uniform_f32x2(&mut self) -> [f32; 2] {
        const SCALE: f32 = 1.0 / (1u32 << 24) as f32;
        let r = self.next_u64();
        [
            (r >> 40) as f32 * SCALE,
            ((r >> 8) & 0xFF_FFFF) as f32 * SCALE,
        ]
    }
    /// Standard normal (Box-Muller; the second value of the pair is dropped).
    #[inline]
    pub fn normal(&mut self) -> f64 {
        self.normal_pair()[0]
    }
    /// Two independent standard normals (both values of one Box-Muller transform).
    #[inline]
    pub fn normal_pair(&mut self) -> [f64; 2] {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (2.0 * std::f64::consts::PI * u2).sin_cos();
        [r * c, r * s]
    }
    /// Uniform integer in [0, n).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    /// The state, for checkpoints.
    pub fn state(&self) -> [u64; 4] {
        self.s
    }
    /// Restores a state from [`Generator::state`].
    pub fn set_state(&mut self, s: [u64; 4]) {
        self.s = s;
    }
}

static GLOBAL: Mutex<Option<Generator>> = Mutex::new(None);

/// A generator that several owners draw from (PyTorch's `torch.Generator` object): random
/// ops use it instead of the global one inside [`SharedGenerator::scope`].
#[derive(Debug, Clone)]
pub struct SharedGenerator(Arc<Mutex<Generator>>);

impl SharedGenerator {
    /// A new generator from `seed`.
    pub fn new(seed: u64) -> Self {
        SharedGenerator(Arc::new(Mutex::new(Generator::new(seed))))
    }
    /// Runs `f` with this generator's state.
    pub fn with<R>(&self, f: impl FnOnce(&mut Generator) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
    /// Runs `body` with every random op on this thread drawing from this generator (nested
    /// scopes: the innermost wins), then restores the previous source, also on panic.
    ///
    /// ```
    /// use deepseek::prelude::*;
    /// use deepseek::tensor::SharedGenerator;
    /// let g = SharedGenerator::new(42);
    /// let a = g.scope(|| Tensor::rand(&[3], DType::F32))?;
    /// let b = SharedGenerator::new(42).scope(|| Tensor::rand(&[3], DType::F32))?;
    /// assert_eq!(a.to_vec::<f32>()?, b.to_vec::<f32>()?);
    /// # Ok::<(), deepseek::Error>(())
    /// ```
    pub fn scope<R>(&self, body: impl FnOnce() -> R) -> R {
        struct Pop;
        impl Drop for Pop {
            fn drop(&mut self) {
                SCOPED.with(|s| s.borrow_mut().pop());
            }
        }
        SCOPED.with(|s| s.borrow_mut().push(self.clone()));
        let _pop = Pop;
        body()
    }
}

thread_local! {
    static SCOPED: RefCell<Vec<SharedGenerator>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with the generator random ops use now: the innermost
/// [`SharedGenerator::scope`] on this thread, else the global generator (seeded with 0 until
/// [`manual_seed`] is called).
pub fn with_rng<R>(f: impl FnOnce(&mut Generator) -> R) -> R {
    if let Some(g) = SCOPED.with(|s| s.borrow().last().cloned()) {
        return g.with(f);
    }
    let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let g = g.get_or_insert_with(|| Generator::new(0));
    f(g)
}

/// The seed of the global generator's last [`manual_seed`] (0, the default, before any).
static GLOBAL_SEED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Seeds the global generator: the same seed gives the same run.
pub fn manual_seed(seed: u64) {
    let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    *g = Some(Generator::new(seed));
    GLOBAL_SEED.store(seed, std::sync::atomic::Ordering::Relaxed);
}

/// The seed the global generator was last seeded with (PyTorch's `initial_seed`).
pub fn initial_seed() -> u64 {
    GLOBAL_SEED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The global generator's state (for checkpoints).
pub fn get_rng_state() -> [u64; 4] {
    with_rng(|g| g.state())
}

/// Restores the global generator's state.
pub fn set_rng_state(s: [u64; 4]) {
    with_rng(|g| g.set_state(s))
}
