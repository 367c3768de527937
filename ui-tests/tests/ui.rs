//! Compile-fail and compile-pass cases for `#[reactive_function]` and `#[derive(Relations)]`.
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("pass/*.rs");
    t.compile_fail("fail/*.rs");
}
