//! Branch-free scalar math that the compiler vectorises inside a SIMD-dispatched loop (for
//! example a `pulp::WithSimd` body): the host kernels of `tears-text` (GELU, attention softmax)
//! and `tears-vae` (the multinomial NLL) use it where libm's scalar `expf` would run one lane at
//! a time.
//!
//! ```
//! use tears_core::fastmath::exp;
//! assert!((exp(1.0) - std::f32::consts::E).abs() <= 2.0 * f32::EPSILON * std::f32::consts::E);
//! assert_eq!(exp(-100.0), 0.0);
//! ```

/// `exp(x)` in f32, branch-free so that it vectorises: `x = n ln 2 + r` with `|r| ≤ ln 2 / 2`
/// (Cody and Waite's two-part ln 2), a degree-7 Taylor polynomial for `e^r` (truncation error
/// below 1e-8 relative), and `2^n` built from its exponent bits. Returns 0 below -87 (where
/// `e^x` nears the smallest normal f32) and saturates at `e^88` above 88.
#[inline(always)]
#[must_use]
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5 · 2^23: adding it rounds to an integer and leaves that integer in the low mantissa bits.
    const SHIFTER: f32 = 12_582_912.0;
    let xc = x.clamp(-87.0, 88.0);
    let t = xc * LOG2_E + SHIFTER;
    let n = t - SHIFTER;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let exponent = (t.to_bits() as i32).wrapping_sub(SHIFTER.to_bits() as i32) + 127;
    let scale = f32::from_bits((exponent << 23) as u32);
    if x < -87.0 { 0.0 } else { p * scale }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulps_of_std_and_zero_below_the_normal_range() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (exp(x), x.exp());
            assert!((got - want).abs() <= 2.0 * want * f32::EPSILON, "exp({x}) = {got}, std gives {want}");
            x += 0.013;
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-88.0), 0.0);
        assert_eq!(exp(-1.0e9), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
    }
}
