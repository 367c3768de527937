//! Proc-macro shell for `reactive`. All logic lives in `reactive-codegen`.
